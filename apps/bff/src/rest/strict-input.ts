import type http from 'node:http'
import type { AnyTRPCRouter } from '@trpc/server'
import type { Meta } from '../trpc'

/**
 * One validation for both doors. trpc-to-openapi turns zod's coercion on, in place, in the
 * input schemas of the procedures it serves (`_def.coerce = true` on every number, boolean,
 * bigint and date, at each request): the very schema objects tRPC validates with, so after one
 * REST call `""`, `" "`, `null` or `true` passed as numbers (0, 1) on /trpc and /api/v1 alike.
 *
 * `pinCoercion` fixes each input schema's `coerce` at what it was declared with, so the
 * adapter's writes do nothing and JSON input is checked strictly through either door. Query
 * strings, which can only carry text, are turned into the JSON values their fields expect by
 * `typeQuery` instead: a number only from a plain decimal, a boolean only from true/false;
 * anything else stays text and fails the field's own check with its own message.
 */

interface ZodNode {
  _zod: { def: Record<string, unknown> & { type: string } }
}
const isNode = (v: unknown): v is ZodNode => !!(v as ZodNode | null)?._zod?.def?.type

/** Every schema reachable from `root` (once each; lazy schemas are followed). */
function* nodesOf(root: unknown, seen = new Set<unknown>()): Generator<ZodNode> {
  if (!isNode(root) || seen.has(root)) return
  seen.add(root)
  yield root
  const def = root._zod.def
  const children: unknown[] = []
  if (def.type === 'object') children.push(...Object.values((root as unknown as { shape: Record<string, unknown> }).shape))
  if (def.type === 'lazy') children.push((def['getter'] as () => unknown)())
  for (const key of ['innerType', 'element', 'in', 'out', 'left', 'right', 'keyType', 'valueType', 'rest']) children.push(def[key])
  for (const key of ['options', 'items']) if (Array.isArray(def[key])) children.push(...(def[key] as unknown[]))
  for (const c of children) yield* nodesOf(c, seen)
}

const inputsOf = (procedure: unknown) => ((procedure as { _def: { inputs?: unknown[] } })._def.inputs ?? []) as unknown[]

/** Pins `coerce` on every schema of every procedure's input (call once, before serving REST). */
export function pinCoercion(router: AnyTRPCRouter): void {
  for (const procedure of Object.values(router._def.procedures)) {
    for (const input of inputsOf(procedure)) {
      for (const node of nodesOf(input)) {
        const def = node._zod.def
        const pinned = def['coerce'] === true
        const own = Object.getOwnPropertyDescriptor(def, 'coerce')
        if (own && !own.configurable) continue // already pinned (a schema shared by procedures)
        Object.defineProperty(def, 'coerce', { get: () => pinned, set: () => {}, enumerable: true, configurable: false })
      }
    }
  }
}

type Kind = 'number' | 'boolean' | 'other'
const WRAPPERS = new Set(['optional', 'nullable', 'default', 'prefault', 'readonly', 'catch', 'nonoptional'])

/** What JSON value a query field stands for: the kind of the field's schema, wrappers removed. */
function kindOf(schema: unknown): { kind: Kind; list: boolean } {
  let s = schema
  let list = false
  for (let i = 0; i < 16 && isNode(s); i++) {
    const def = s._zod.def
    if (WRAPPERS.has(def.type)) s = def['innerType']
    else if (def.type === 'array') {
      list = true
      s = def['element']
    } else break
  }
  if (!isNode(s)) return { kind: 'other', list }
  const def = s._zod.def
  if (def.type === 'number' || def.type === 'int') return { kind: 'number', list }
  if (def.type === 'boolean') return { kind: 'boolean', list }
  // ZFlag: a union of the literals true and false.
  if (def.type === 'union' && (def['options'] as ZodNode[]).every((o) => o._zod.def.type === 'literal' && (o._zod.def['values'] as unknown[]).every((v) => typeof v === 'boolean')))
    return { kind: 'boolean', list }
  return { kind: 'other', list }
}

const DECIMAL = /^-?(0|[1-9]\d{0,15})(\.\d{1,15})?$/
const typed = (kind: Kind, text: string): unknown => (kind === 'number' && DECIMAL.test(text) ? Number(text) : kind === 'boolean' && (text === 'true' || text === 'false') ? text === 'true' : text)

interface Route {
  method: string
  pattern: RegExp
  fields: Map<string, { kind: Kind; list: boolean }>
}

/**
 * For GET and DELETE requests (input from the query string): sets `req.query`, which the
 * adapter reads instead of parsing the URL itself, with each value typed for its field.
 * Values are wrapped in lists (the adapter unwraps lists of one) so 0 and false are kept;
 * an empty parameter is left out, as the adapter does.
 */
export function createQueryTyper(router: AnyTRPCRouter) {
  const routes: Route[] = []
  for (const procedure of Object.values(router._def.procedures)) {
    const openapi = ((procedure as { _def: { meta?: Meta } })._def.meta as Meta | undefined)?.openapi
    if (!openapi || (openapi.method !== 'GET' && openapi.method !== 'DELETE')) continue
    const fields = new Map<string, { kind: Kind; list: boolean }>()
    for (const input of inputsOf(procedure)) {
      if (isNode(input) && input._zod.def.type === 'object') for (const [k, v] of Object.entries((input as unknown as { shape: Record<string, unknown> }).shape)) fields.set(k, kindOf(v))
    }
    const pattern = new RegExp(`^${openapi.path.replace(/\/$/, '').replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '[^/]+')}/?$`)
    routes.push({ method: openapi.method, pattern, fields })
  }

  return function typeQuery(req: http.IncomingMessage & { query?: unknown }, url: URL, path: string): void {
    const route = routes.find((r) => r.method === req.method && r.pattern.test(path))
    if (!route) return
    const query: Record<string, unknown[]> = {}
    url.searchParams.forEach((value, key) => {
      if (value === '') return // an empty parameter is an absent one (as the adapter has it)
      const field = route.fields.get(key) ?? { kind: 'other' as const, list: false }
      ;(query[key] ??= []).push(typed(field.kind, value))
    })
    req.query = query
  }
}
