import { zodResolver } from '@hookform/resolvers/zod'
import type { FieldError, FieldErrors, Resolver } from 'react-hook-form'
import { ZCreateAppInput, type TCreateAppInput } from '@alveary/core/schemas'

/** What the deploy form edits: list-like fields are text, parsed on validation. */
export interface AppFormValues {
  name: string
  replicas: number
  driver: 'process' | 'docker'
  command: string
  /** One argument per line, or space-separated on one line (quotes group words). */
  args: string
  image: string
  /** KEY=VALUE per line; blank lines and # comments are skipped. */
  env: string
  /** Port names, comma or space separated; name:containerPort for docker. */
  ports: string
  /** HTTP health checks on the first port: a path each, '' for none. */
  readinessPath: string
  livenessPath: string
  /** Seconds a new instance runs, ready, before a rollout counts it; '' = the default. */
  minReadySeconds: string
  cpuMillis: number
  memoryMb: number
  /** Processes and threads per instance; '' = the node's default. */
  pidsMax: string
  /** Docker: a read-only image filesystem. */
  readOnlyRootfs: boolean
  restartPolicy: 'always' | 'on_failure' | 'never'
  /** Advanced scheduling. key=value per line; blank lines and # comments are skipped. */
  nodeSelector: string
  spread: 'none' | 'soft' | 'hard'
  /** '' = the tenant's default. */
  placementStrategy: '' | 'spread' | 'binpack'
  priorityClass: 'low' | 'normal' | 'high' | 'critical'
  maxUnavailable: number
  /** One volume per line: `name sizeMiB /mount/path [local|shared]`. */
  volumes: string
  stopAfterDisconnect: boolean
}

/** The fields under "Advanced scheduling" (the disclosure opens when one of them is invalid). */
export const ADVANCED_FIELDS = ['nodeSelector', 'spread', 'placementStrategy', 'priorityClass', 'maxUnavailable'] as const

export const emptyAppForm: AppFormValues = {
  name: '',
  replicas: 1,
  driver: 'process',
  command: '',
  args: '',
  image: '',
  env: '',
  ports: 'http',
  readinessPath: '',
  livenessPath: '',
  minReadySeconds: '',
  cpuMillis: 100,
  memoryMb: 64,
  pidsMax: '',
  readOnlyRootfs: false,
  restartPolicy: 'always',
  nodeSelector: '',
  spread: 'soft',
  placementStrategy: '',
  priorityClass: 'normal',
  maxUnavailable: 1,
  volumes: '',
  stopAfterDisconnect: false,
}

export const sampleAppForm: AppFormValues = {
  ...emptyAppForm,
  name: 'hello',
  replicas: 3,
  command: 'node',
  args: 'examples/hello/server.js',
  readinessPath: '/healthz',
  livenessPath: '/livez',
  cpuMillis: 100,
  memoryMb: 64,
}

/** Splits one line like a shell would, without expansions: `a "b c" 'd'` -> [a, b c, d]. */
export function splitWords(line: string): string[] {
  const out: string[] = []
  let cur = ''
  let quote: '"' | "'" | null = null
  let has = false
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!
    if (quote) {
      if (ch === quote) quote = null
      else if (ch === '\\' && quote === '"' && i + 1 < line.length) cur += line[++i]
      else cur += ch
    } else if (ch === '"' || ch === "'") {
      quote = ch
      has = true
    } else if (ch === '\\' && i + 1 < line.length) {
      cur += line[++i]
      has = true
    } else if (/\s/.test(ch)) {
      if (has || cur) out.push(cur)
      cur = ''
      has = false
    } else cur += ch
  }
  if (has || cur) out.push(cur)
  return out
}

export function parseArgs(text: string): string[] {
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '')
  if (lines.length <= 1) return splitWords(lines[0] ?? '')
  return lines
}

export function parseEnv(text: string): { env: Record<string, string>; error: string | null } {
  const env: Record<string, string> = {}
  const lines = text.split(/\r?\n/)
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n]!.trim()
    if (!line || line.startsWith('#')) continue
    const eq = line.indexOf('=')
    if (eq <= 0) return { env, error: `Line ${n + 1}: expected KEY=VALUE` }
    env[line.slice(0, eq).trim()] = line.slice(eq + 1)
  }
  return { env, error: null }
}

/** Node selector lines: key=value, one per line; the schema checks lengths and the count. */
export function parseSelector(text: string): { labels: Record<string, string>; error: string | null } {
  const labels: Record<string, string> = {}
  const lines = text.split(/\r?\n/)
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n]!.trim()
    if (!line || line.startsWith('#')) continue
    const eq = line.indexOf('=')
    if (eq <= 0) return { labels, error: `Line ${n + 1}: expected key=value` }
    const key = line.slice(0, eq).trim()
    if (key in labels) return { labels, error: `Line ${n + 1}: "${key}" is already set` }
    labels[key] = line.slice(eq + 1).trim()
  }
  return { labels, error: null }
}

export function parsePorts(text: string): { ports: { name: string; containerPort?: number }[]; error: string | null } {
  const ports: { name: string; containerPort?: number }[] = []
  for (const word of text.split(/[\s,]+/).filter(Boolean)) {
    const [name = '', port] = word.split(':')
    if (port === undefined) ports.push({ name })
    else {
      const p = Number(port)
      if (!Number.isInteger(p)) return { ports, error: `"${word}": the container port must be a number` }
      ports.push({ name, containerPort: p })
    }
  }
  return { ports, error: null }
}

/** Volume lines: `name sizeMiB /mount/path [local|shared]`; the schema checks names, sizes and paths. */
export function parseVolumes(text: string): { volumes: { name: string; sizeMb: number; mountPath: string; driver: string }[]; error: string | null } {
  const volumes: { name: string; sizeMb: number; mountPath: string; driver: string }[] = []
  const lines = text.split(/\r?\n/)
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n]!.trim()
    if (!line || line.startsWith('#')) continue
    const [name, size, mountPath, driver = 'local', ...rest] = line.split(/\s+/)
    if (!name || !size || !mountPath || rest.length) return { volumes, error: `Line ${n + 1}: expected "name sizeMiB /mount/path [local|shared]"` }
    const sizeMb = Number(size)
    if (!Number.isInteger(sizeMb)) return { volumes, error: `Line ${n + 1}: the size is a whole number of MiB` }
    if (driver !== 'local' && driver !== 'shared') return { volumes, error: `Line ${n + 1}: the driver is local or shared` }
    volumes.push({ name, sizeMb, mountPath, driver })
  }
  return { volumes, error: null }
}

/** The API input the form stands for (not validated yet). */
export function toCreateInput(v: AppFormValues): unknown {
  const num = (n: number) => (Number.isNaN(n) ? undefined : n)
  return {
    name: v.name.trim(),
    replicas: num(v.replicas),
    spec: {
      driver: v.driver,
      command: v.command.trim() || undefined,
      image: v.driver === 'docker' ? v.image.trim() || undefined : undefined,
      args: parseArgs(v.args),
      env: parseEnv(v.env).env,
      ports: parsePorts(v.ports).ports.map((p, k) =>
        k === 0
          ? {
              ...p,
              ...(v.readinessPath.trim() && { readiness: { type: 'http', path: v.readinessPath.trim() } }),
              ...(v.livenessPath.trim() && { liveness: { type: 'http', path: v.livenessPath.trim() } }),
            }
          : p,
      ),
      cpuMillis: num(v.cpuMillis),
      memoryMb: num(v.memoryMb),
      pidsMax: v.pidsMax.trim() === '' ? null : Number(v.pidsMax),
      minReadySeconds: v.minReadySeconds.trim() === '' ? null : Number(v.minReadySeconds),
      ...(v.driver === 'docker' && { readOnlyRootfs: v.readOnlyRootfs }),
      restartPolicy: v.restartPolicy,
      nodeSelector: parseSelector(v.nodeSelector).labels,
      spread: v.spread,
      placementStrategy: v.placementStrategy || null,
      priorityClass: v.priorityClass,
      maxUnavailable: num(v.maxUnavailable),
      volumes: parseVolumes(v.volumes).volumes,
      stopAfterDisconnect: v.stopAfterDisconnect,
    },
  }
}

/** Maps error paths of ZCreateAppInput back to the form's fields. */
const FIELD_OF: Record<string, keyof AppFormValues> = {
  name: 'name',
  replicas: 'replicas',
  'spec.driver': 'driver',
  'spec.command': 'command',
  'spec.image': 'image',
  'spec.args': 'args',
  'spec.env': 'env',
  'spec.ports': 'ports',
  'spec.ports.0.readiness.path': 'readinessPath',
  'spec.ports.0.liveness.path': 'livenessPath',
  'spec.cpuMillis': 'cpuMillis',
  'spec.memoryMb': 'memoryMb',
  'spec.pidsMax': 'pidsMax',
  'spec.minReadySeconds': 'minReadySeconds',
  'spec.readOnlyRootfs': 'readOnlyRootfs',
  'spec.restartPolicy': 'restartPolicy',
  'spec.nodeSelector': 'nodeSelector',
  'spec.spread': 'spread',
  'spec.placementStrategy': 'placementStrategy',
  'spec.priorityClass': 'priorityClass',
  'spec.maxUnavailable': 'maxUnavailable',
  'spec.volumes': 'volumes',
  'spec.stopAfterDisconnect': 'stopAfterDisconnect',
}

function firstError(node: unknown): FieldError | null {
  if (!node || typeof node !== 'object') return null
  const o = node as Record<string, unknown>
  if (typeof o['message'] === 'string' && typeof o['type'] === 'string') return o as unknown as FieldError
  for (const [k, v] of Object.entries(o)) {
    if (k === 'ref') continue
    const e = firstError(v)
    if (e) return e
  }
  return null
}

/**
 * Plain-words messages for the schema's checks that carry no message of their own (the
 * schema's own messages, like "At least 10 millicores", always win over these).
 */
function plainMessage(issue: { code?: string; minimum?: unknown; maximum?: unknown; origin?: string; expected?: string; path?: PropertyKey[]; issues?: unknown[] }): string | undefined {
  const chars = issue.origin === 'string' ? ' characters' : ''
  if (issue.code === 'too_small') return `At least ${String(issue.minimum)}${chars}`
  if (issue.code === 'too_big') return `At most ${String(issue.maximum)}${chars}`
  if (issue.code === 'invalid_type' && issue.expected === 'int') return 'A whole number'
  if (issue.code === 'invalid_key') return plainMessage((issue.issues?.[0] ?? {}) as typeof issue)
  return undefined
}

/** An error under spec.nodeSelector.<key> names the label: `Label "zone": value too long (at most 63 characters)`. */
function selectorError(node: unknown): FieldError | null {
  if (!node || typeof node !== 'object' || 'message' in node) return null
  for (const [key, v] of Object.entries(node as Record<string, unknown>)) {
    if (key === 'ref') continue
    const e = firstError(v)
    if (!e) continue
    const part = e.type === 'invalid_key' ? 'key' : 'value'
    const k = key.length > 24 ? `${key.slice(0, 24)}…` : key
    const m = /^At most (\d+) characters$/.exec(e.message ?? '')
    return { type: e.type, message: `Label "${k}": ${m ? `${part} too long (at most ${m[1]} characters)` : `${part}: ${e.message ?? 'invalid'}`}` }
  }
  return null
}

const zod = zodResolver(ZCreateAppInput, { error: (iss) => plainMessage(iss as never) })

/**
 * Validates with the API's own schema (ZCreateAppInput via zodResolver), so the form shows
 * exactly the messages the server would send, next to the field they are about.
 */
export const appFormResolver: Resolver<AppFormValues, unknown, TCreateAppInput> = async (values, context, options) => {
  const local: Partial<Record<keyof AppFormValues, string>> = {}
  for (const k of ['replicas', 'cpuMillis', 'memoryMb', 'maxUnavailable'] as const) if (Number.isNaN(values[k])) local[k] = 'Enter a number'
  if (values.minReadySeconds.trim() !== '' && Number.isNaN(Number(values.minReadySeconds))) local.minReadySeconds = 'Enter a number'
  const selector = parseSelector(values.nodeSelector)
  if (selector.error) local.nodeSelector = selector.error
  const env = parseEnv(values.env)
  if (env.error) local.env = env.error
  const ports = parsePorts(values.ports)
  if (ports.error) local.ports = ports.error
  const volumes = parseVolumes(values.volumes)
  if (volumes.error) local.volumes = volumes.error

  const res = await zod(toCreateInput(values) as never, context, { ...options, fields: {}, names: undefined } as never)
  const errors: FieldErrors<AppFormValues> = {}
  for (const [path, field] of Object.entries(FIELD_OF)) {
    const node = path.split('.').reduce<unknown>((o, k) => (o && typeof o === 'object' ? (o as Record<string, unknown>)[k] : undefined), res.errors)
    const e = (field === 'nodeSelector' ? selectorError(node) : null) ?? firstError(node)
    if (e) errors[field] = { type: e.type, message: e.message ?? 'Invalid' }
  }
  // Anything the map does not know (a new field in the schema) still shows, on the name.
  if (!Object.keys(errors).length && Object.keys(res.errors).length) {
    const e = firstError(res.errors)
    errors.name = { type: 'validate', message: e?.message ?? 'Invalid input' }
  }
  for (const [k, msg] of Object.entries(local)) errors[k as keyof AppFormValues] = { type: 'validate', message: msg }
  if (Object.keys(errors).length) return { values: {}, errors }
  return { values: res.values as TCreateAppInput, errors: {} }
}
