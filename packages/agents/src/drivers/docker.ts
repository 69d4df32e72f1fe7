/**
 * The docker driver: one instance = one container, through the Docker Engine API (Docker, or
 * Podman's Docker-compatible service). Containers carry alveary.* labels, so a restarted agent
 * finds and re-adopts them by id; the engine's own restart policy stays off: restarts are the
 * supervisor's job, the same for every driver.
 */
import { stat } from 'node:fs/promises'
import { constants as osConstants } from 'node:os'
import Docker from 'dockerode'
import type { Logger } from 'pino'
import type { TDesiredInstance } from '@alveary/core/protocol'
import { specHash } from '../reconciler'
import { ZPersistedInstance, type PersistedInstance } from '../state-store'
import { LineSplitter } from './lines'
import { portEnvName } from './process'
import {
  SpawnError,
  type ExitInfo,
  type InstanceHandle,
  type InstanceUsage,
  type LogCursor,
  type LogFollower,
  type LogLine,
  type LogSink,
  type RuntimeDriver,
  type StartHooks,
} from './types'

export const LABELS = {
  managed: 'alveary.managed',
  tenant: 'alveary.tenant',
  app: 'alveary.app',
  instance: 'alveary.instance',
  generation: 'alveary.generation',
  specHash: 'alveary.spec-hash',
  node: 'alveary.node',
  /** Lets an agent that lost its state files still stop the container gracefully. */
  stopGrace: 'alveary.stop-grace',
} as const

export const containerName = (instanceId: string) => `alveary-${instanceId}`

// ---------------------------------------------------------------------------------------------
// Endpoint and detection

export type DockerEndpoint = { kind: 'unix'; socketPath: string } | { kind: 'tcp'; host: string; port: number }

/** `unix:///path`, `/path`, `tcp://host:port` (or http://); throws on anything else. */
export function parseDockerHost(input: string): DockerEndpoint {
  const s = input.trim()
  if (s.startsWith('/')) return { kind: 'unix', socketPath: s }
  let url: URL
  try {
    url = new URL(s)
  } catch {
    throw new Error(`"${input}" is not unix:///path/to/socket or tcp://host:port`)
  }
  if (url.protocol === 'unix:') {
    const path = decodeURIComponent(url.pathname)
    if (!path || path === '/') throw new Error(`"${input}" has no socket path`)
    return { kind: 'unix', socketPath: path }
  }
  if (url.protocol === 'tcp:' || url.protocol === 'http:') {
    if (!url.hostname) throw new Error(`"${input}" has no host`)
    return { kind: 'tcp', host: url.hostname.replace(/^\[|\]$/g, ''), port: url.port ? Number(url.port) : 2375 }
  }
  throw new Error(`unsupported docker host scheme ${url.protocol} in "${input}" (use unix:// or tcp://; TLS is not supported)`)
}

export function endpointUrl(e: DockerEndpoint): string {
  return e.kind === 'unix' ? `unix://${e.socketPath}` : `tcp://${e.host}:${e.port}`
}

/** Docker's socket, else rootful Podman's, else rootless Podman's; the first that exists. */
export async function defaultDockerHost(env: Record<string, string | undefined> = process.env): Promise<string | null> {
  const candidates = ['/var/run/docker.sock', '/run/podman/podman.sock']
  if (env.XDG_RUNTIME_DIR) candidates.push(`${env.XDG_RUNTIME_DIR}/podman/podman.sock`)
  for (const path of candidates) {
    try {
      if ((await stat(path)).isSocket()) return `unix://${path}`
    } catch {
      // absent
    }
  }
  return null
}

/** A client for exactly this endpoint: dockerode would otherwise merge DOCKER_* from the env. */
export function dockerClient(e: DockerEndpoint): Docker {
  const none = { host: undefined, port: undefined, socketPath: undefined, protocol: undefined, ca: undefined, cert: undefined, key: undefined }
  return new Docker(e.kind === 'unix' ? { ...none, socketPath: e.socketPath } : { ...none, host: e.host, port: e.port, protocol: 'http' })
}

export type DockerProbe =
  | { ok: true; docker: Docker; endpoint: DockerEndpoint; apiVersion: string; version: string; engine: 'docker' | 'podman' }
  | { ok: false; reason: string }

/** The driver works when the socket is there, /_ping answers OK and /version gives an API version. */
export async function probeDocker(host: string, timeoutMs = 3000): Promise<DockerProbe> {
  let endpoint: DockerEndpoint
  try {
    endpoint = parseDockerHost(host)
  } catch (err) {
    return { ok: false, reason: (err as Error).message }
  }
  if (endpoint.kind === 'unix') {
    try {
      if (!(await stat(endpoint.socketPath)).isSocket()) return { ok: false, reason: `${endpoint.socketPath} is not a socket` }
    } catch {
      return { ok: false, reason: `no socket at ${endpoint.socketPath}` }
    }
  }
  const docker = dockerClient(endpoint)
  // dockerode takes an abortSignal on every call; its typings only know it on some.
  const withSignal = docker as unknown as {
    ping(o: { abortSignal: AbortSignal }): Promise<unknown>
    version(o: { abortSignal: AbortSignal }): Promise<Docker.DockerVersion>
  }
  try {
    const pong = String(await withSignal.ping({ abortSignal: AbortSignal.timeout(timeoutMs) }))
    if (pong.trim() !== 'OK') return { ok: false, reason: `ping answered "${pong.slice(0, 40)}"` }
    const v = await withSignal.version({ abortSignal: AbortSignal.timeout(timeoutMs) })
    if (!v.ApiVersion) return { ok: false, reason: 'the engine did not report an API version' }
    const engine: 'docker' | 'podman' = (v.Components ?? []).some((c) => /podman/i.test(c.Name)) ? 'podman' : 'docker'
    return { ok: true, docker, endpoint, apiVersion: v.ApiVersion, version: v.Version, engine }
  } catch (err) {
    return { ok: false, reason: daemonMessage(err) }
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers

interface DockerError {
  statusCode?: number
  json?: { message?: string } | null
  reason?: string
  message?: string
}
const statusOf = (err: unknown) => (err as DockerError | null)?.statusCode

/** The daemon's own message where there is one ("(HTTP code 404) no such image - " noise removed). */
export function daemonMessage(err: unknown): string {
  const e = err as DockerError | null
  const m = e?.json && typeof e.json === 'object' && typeof e.json.message === 'string' ? e.json.message : (e?.message ?? String(err))
  return m.replace(/^\(HTTP code \d+\)\s*[^-]*-\s*/, '').trim()
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref?.())

/** Nanoseconds since the epoch of an RFC 3339 timestamp (Docker: nanoseconds, Podman: seconds). */
export function parseTimestampNs(ts: string): bigint | null {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/.exec(ts)
  if (!m) return null
  const ms = Date.parse(`${m[1]}${m[3]}`)
  if (Number.isNaN(ms)) return null
  return BigInt(ms) * 1_000_000n + BigInt((m[2] ?? '').padEnd(9, '0'))
}
const nsToIso = (ns: bigint) => new Date(Number(ns / 1_000_000n)).toISOString()

const signalNames = new Map<number, NodeJS.Signals>(Object.entries(osConstants.signals).map(([k, v]) => [v as number, k as NodeJS.Signals]))

interface ContainerState {
  Running?: boolean
  ExitCode?: number
  OOMKilled?: boolean
  Error?: string
}

export function exitInfoOf(state: ContainerState, memoryBytes?: number): ExitInfo {
  const code = typeof state.ExitCode === 'number' ? state.ExitCode : null
  const extra = state.Error ? `: ${state.Error}` : ''
  if (state.OOMKilled) {
    const limit = memoryBytes ? ` (memory limit ${Math.round(memoryBytes / 1024 / 1024)} MiB)` : ''
    return { exitCode: code, signal: 'SIGKILL', message: `killed: out of memory${limit}${extra}` }
  }
  const signal = code !== null && code > 128 ? (signalNames.get(code - 128) ?? null) : null
  // Podman on cgroup v1 does not report OOM kills: a SIGKILL under a memory limit may be one.
  const hint = signal === 'SIGKILL' && memoryBytes ? ` (out of memory? memory limit ${Math.round(memoryBytes / 1024 / 1024)} MiB)` : ''
  if (signal) return { exitCode: code, signal, message: `terminated by ${signal}${hint}${extra}` }
  return { exitCode: code, signal: null, message: `exited with code ${code ?? 'unknown'}${extra}` }
}

/**
 * Host address ports are published on: all IPv4 interfaces. Podman is sent "" (all interfaces)
 * instead: netavark 1.4 (Podman 4.3) turns an explicit 0.0.0.0 into a DNAT rule for destination
 * 0.0.0.0/32, which matches no traffic, so connections hang on conmon's port reservation.
 */
export function publishHostIp(engine: 'docker' | 'podman'): string {
  return engine === 'podman' ? '' : '0.0.0.0'
}

/** Everything the container gets from the spec; pure, for tests. */
export function containerConfig(instance: TDesiredInstance, nodeName: string, hostIp = '0.0.0.0'): Docker.ContainerCreateOptions {
  const { spec } = instance
  const ports = spec.ports.map((p) => ({ name: p.name, host: p.hostPort, container: p.containerPort ?? p.hostPort }))
  // Inside the container the app listens on the container ports.
  const env: Record<string, string> = { ...spec.env }
  const [first] = ports
  if (first) env.PORT = String(first.container)
  for (const p of ports) env[portEnvName(p.name)] = String(p.container)
  env.ALVEARY_INSTANCE_ID = instance.instanceId
  env.ALVEARY_APP = instance.appName
  env.ALVEARY_TENANT_ID = instance.tenantId
  env.ALVEARY_ORDINAL = String(instance.ordinal)

  const exposed: Record<string, object> = {}
  const bindings: Record<string, Array<{ HostIp: string; HostPort: string }>> = {}
  for (const p of ports) {
    const key = `${p.container}/tcp`
    exposed[key] = {}
    ;(bindings[key] ??= []).push({ HostIp: hostIp, HostPort: String(p.host) })
  }
  // command set: Cmd = [command, ...args]; only args: Cmd = args; neither: the image's default.
  const cmd = spec.command ? [spec.command, ...spec.args] : spec.args.length ? spec.args : undefined
  return {
    name: containerName(instance.instanceId),
    Image: spec.image ?? undefined,
    ...(cmd ? { Cmd: cmd } : {}),
    Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
    Labels: {
      [LABELS.managed]: 'true',
      [LABELS.tenant]: instance.tenantId,
      [LABELS.app]: instance.appId,
      [LABELS.instance]: instance.instanceId,
      [LABELS.generation]: String(instance.generation),
      [LABELS.specHash]: specHash(spec),
      [LABELS.node]: nodeName,
      [LABELS.stopGrace]: String(spec.stopGraceSeconds),
    },
    ExposedPorts: exposed,
    Tty: false,
    HostConfig: {
      PortBindings: bindings,
      NanoCpus: spec.cpuMillis * 1_000_000,
      Memory: spec.memoryMb * 1024 * 1024,
      // An init as PID 1 forwards SIGTERM (busybox or a shell as PID 1 would ignore it) and reaps zombies.
      Init: true,
      RestartPolicy: { Name: 'no' },
    },
  }
}

// ---------------------------------------------------------------------------------------------
// Logs

interface ContainerFollower extends LogFollower {
  readonly done: Promise<void>
}

/**
 * Follows a container's output (follow + timestamps, demultiplexed). A stream that breaks
 * while the container still runs is reopened from the cursor; it ends with the container.
 */
function followContainer(docker: Docker, container: Docker.Container, from: LogCursor | null, sink: LogSink, log: Logger): ContainerFollower {
  const ac = new AbortController()
  let stopped = false
  let stream: (NodeJS.ReadableStream & { destroy?: () => void }) | null = null
  const fromNs = from?.ts ? parseTimestampNs(from.ts) : null
  /** Messages to skip when (re)reading from a whole-second `since`. */
  let skip: { ns: bigint; count: number } | null = fromNs !== null ? { ns: fromNs, count: from?.atTs ?? 0 } : null
  let last: { raw: string; ns: bigint; count: number } | null = fromNs !== null && from?.ts ? { raw: from.ts, ns: fromNs, count: from.atTs ?? 0 } : null
  const out: LogLine[] = []
  const frameTs: Record<'stdout' | 'stderr', string> = { stdout: '', stderr: '' }
  const splitters = {
    stdout: new LineSplitter((line) => out.push({ stream: 'stdout', ts: frameTs.stdout || new Date().toISOString(), line })),
    stderr: new LineSplitter((line) => out.push({ stream: 'stderr', ts: frameTs.stderr || new Date().toISOString(), line })),
  }

  function onFrame(name: 'stdout' | 'stderr', chunk: Buffer): void {
    if (stopped) return
    // Every message is prefixed with its timestamp and a space.
    const sp = chunk.indexOf(0x20)
    const raw = sp > 0 && sp < 40 ? chunk.subarray(0, sp).toString('latin1') : ''
    const ns = raw ? parseTimestampNs(raw) : null
    const body = ns !== null ? chunk.subarray(sp + 1) : chunk
    if (ns !== null) {
      if (skip) {
        if (ns < skip.ns) return
        if (ns === skip.ns && skip.count > 0) {
          skip.count -= 1
          return
        }
        skip = null
      }
      if (last && last.ns === ns) last.count += 1
      else last = { raw, ns, count: 1 }
      frameTs[name] = nsToIso(ns)
    }
    splitters[name].push(body)
    if (out.length) sink(out.splice(0))
  }
  const writer = (name: 'stdout' | 'stderr') => ({ write: (b: Buffer) => (onFrame(name, b), true) }) as unknown as NodeJS.WritableStream

  async function run(): Promise<void> {
    let attempt = 0
    while (!stopped) {
      const since = last ? Number(last.ns / 1_000_000_000n) : 0
      try {
        const s = (await container.logs({ follow: true, stdout: true, stderr: true, timestamps: true, since, abortSignal: ac.signal } as Docker.ContainerLogsOptions & {
          follow: true
        })) as NodeJS.ReadableStream & { destroy?: () => void }
        stream = s
        if (stopped) {
          s.destroy?.()
          break
        }
        await new Promise<void>((resolve) => {
          docker.modem.demuxStream(s, writer('stdout'), writer('stderr'))
          s.once('end', resolve)
          s.once('close', resolve)
          // `on`, not `once`: a second error event must not become an uncaught exception.
          s.on('error', (err: Error) => {
            if (!stopped) log.debug({ err: err.message }, 'container log stream failed')
            resolve()
          })
        })
      } catch (err) {
        if (stopped) break
        if (statusOf(err) === 404) break
        log.debug({ err: daemonMessage(err) }, 'cannot follow the container logs')
      }
      if (stopped) break
      // The stream ends when the container stops; if it still runs (or the engine cannot tell,
      // e.g. while its service restarts), the stream broke: reopen it.
      let running = true
      try {
        running = (await container.inspect()).State.Running
      } catch (err) {
        running = statusOf(err) !== 404
      }
      if (!running || stopped) break
      attempt += 1
      await sleep(Math.min(5000, 250 * attempt))
      if (last) skip = { ns: last.ns, count: last.count }
    }
    splitters.stdout.flush()
    splitters.stderr.flush()
    if (out.length) sink(out.splice(0))
  }

  const done = run().catch((err) => log.warn({ err }, 'container log follower failed'))
  let stopping: Promise<void> | null = null
  const abort = () => {
    stopped = true
    ac.abort()
    stream?.destroy?.()
  }
  return {
    done,
    cursor: () => (last ? { ts: last.raw, atTs: last.count } : {}),
    stop() {
      // The stream ends by itself once the container is gone; do not wait for a stuck one.
      stopping ??= Promise.race([done, sleep(2000)]).then(abort)
      return stopping
    },
    abort,
  }
}

// ---------------------------------------------------------------------------------------------
// The driver

export interface DockerDriverOptions {
  docker: Docker
  /** Written to the alveary.node label: which agent owns a container. */
  nodeName: string
  logger: Logger
  /** A pull taking longer fails (and is retried with the restart backoff). Default 10 minutes. */
  pullTimeoutMs?: number
  /** Containers are also inspected this often, in case a wait on them is lost. Default 30s. */
  verifyMs?: number
  /** Which engine answers (from probeDocker): decides the HostIp of published ports. Default docker. */
  engine?: 'docker' | 'podman'
}

export interface DockerDriver extends RuntimeDriver {
  readonly name: 'docker'
}

export function createDockerDriver(opts: DockerDriverOptions): DockerDriver {
  const { docker, nodeName } = opts
  const log = opts.logger.child({ driver: 'docker' })
  const pullTimeoutMs = opts.pullTimeoutMs ?? 10 * 60_000
  const hostIp = publishHostIp(opts.engine ?? 'docker')
  const verifyMs = opts.verifyMs ?? 30_000
  const pulls = new Map<string, Promise<void>>()
  const cpuPrev = new Map<string, { total: number; at: number }>()

  function makeHandle(container: Docker.Container, info: Docker.ContainerInspectInfo, adopted: boolean): InstanceHandle {
    const hlog = log.child({ container: container.id.slice(0, 12) })
    const ac = new AbortController()
    let detached = false
    const followers = new Set<ContainerFollower>()
    const memory = info.HostConfig?.Memory ?? undefined
    const startedAtMs = Date.parse(info.State.StartedAt) || Date.now()
    const gone: ExitInfo = { exitCode: null, signal: null, message: 'the container was removed behind the agent' }

    let stopping: Promise<ExitInfo> | null = null
    let settled = false
    let settle!: (info: ExitInfo) => void
    const exited = new Promise<ExitInfo>((r) => (settle = r))
    const finish = (info: ExitInfo) => {
      if (settled || detached) return
      settled = true
      clearInterval(poll)
      ac.abort()
      settle(info)
    }

    /** The exit if the container is no longer running, null while it runs, undefined when the engine cannot tell. */
    async function checkExit(): Promise<ExitInfo | null | undefined> {
      try {
        const st = await container.inspect()
        // The OOM hint only for exits the agent did not cause.
        return st.State.Running ? null : exitInfoOf(st.State, stopping ? undefined : memory)
      } catch (err) {
        return statusOf(err) === 404 ? gone : undefined
      }
    }

    /**
     * One long poll on /wait, read as a stream: if the engine's service dies mid-request (Podman
     * restarting), the buffered API call would hang forever; a stream at least closes.
     */
    function waitOnce(): Promise<'answered' | 'broken'> {
      return new Promise((resolve) => {
        const opts = {
          path: `/containers/${container.id}/wait?`,
          method: 'POST',
          isStream: true,
          abortSignal: ac.signal,
          statusCodes: { 200: true, 404: 'no such container', 500: 'server error' },
          options: {},
        }
        const modem = docker.modem as unknown as { dial(o: typeof opts, cb: (err: unknown, res?: NodeJS.ReadableStream) => void): void }
        modem.dial(opts, (err, res) => {
          if (err || !res) return resolve('broken')
          let body = ''
          let answered = false
          res.on('data', (d: Buffer) => {
            body += d.toString()
            if (/"StatusCode"/.test(body)) answered = true
          })
          const end = () => resolve(answered ? 'answered' : 'broken')
          res.once('end', end)
          res.once('close', end)
          res.on('error', end)
        })
      })
    }

    async function watch(): Promise<void> {
      let failures = 0
      while (!settled && !detached) {
        const outcome = await waitOnce()
        if (settled || detached) return
        const exit = await checkExit()
        if (exit) return finish(exit)
        if (outcome === 'broken' || exit === undefined) {
          failures += 1
          if (failures === 1 || failures % 30 === 0) hlog.warn({ failures }, 'lost the wait on the container (engine unreachable?); retrying')
          await sleep(Math.min(5000, 200 * failures))
        } else {
          // Answered, yet running: never a tight loop.
          failures = 0
          await sleep(200)
        }
      }
    }
    // A safety net for a wait that is lost in some other way.
    const poll = setInterval(() => {
      void checkExit().then((exit) => exit && finish(exit))
    }, verifyMs)
    poll.unref()
    void watch().catch((err) => hlog.error({ err }, 'watching the container failed'))

    async function stop(graceSeconds: number): Promise<ExitInfo> {
      try {
        await container.stop({ t: graceSeconds })
      } catch (err) {
        const code = statusOf(err)
        // 304: already stopped; 404: already gone.
        if (code !== 304 && code !== 404) {
          hlog.warn({ err: daemonMessage(err) }, 'stopping the container failed; killing it')
          await container.kill().catch(() => {})
        }
      }
      let info = await Promise.race([exited, sleep((graceSeconds + 15) * 1000).then(() => null)])
      if (!info) {
        await container.kill().catch(() => {})
        info = await Promise.race([exited, sleep(10_000).then(() => gone)])
      }
      // The last lines before removing the container (its logs go with it).
      await Promise.all([...followers].map((f) => f.stop()))
      await removeContainer(container)
      return info
    }

    return {
      driver: 'docker',
      id: container.id,
      pid: info.State.Pid > 0 ? info.State.Pid : null,
      processGroup: null,
      startTime: null,
      adopted,
      exited,
      stop(graceSeconds) {
        stopping ??= stop(graceSeconds)
        return stopping
      },
      detach() {
        detached = true
        clearInterval(poll)
        ac.abort()
        for (const f of followers) f.abort()
      },
      followLogs(from, sink) {
        // An adopted container without a stored cursor: only what it writes from now on.
        const start = from ?? (adopted ? { ts: new Date().toISOString().replace(/\.\d+Z$/, 'Z'), atTs: Number.MAX_SAFE_INTEGER } : null)
        const f = followContainer(docker, container, start, sink, hlog)
        followers.add(f)
        void f.done.then(() => followers.delete(f))
        return f
      },
      startedAtMs,
    } as InstanceHandle & { startedAtMs: number }
  }

  async function removeContainer(c: Docker.Container): Promise<void> {
    try {
      await c.remove({ force: true, v: true })
    } catch (err) {
      const code = statusOf(err)
      if (code !== 404 && !/removal of container .* is already in progress/i.test(daemonMessage(err))) {
        log.warn({ container: c.id, err: daemonMessage(err) }, 'cannot remove the container')
      }
    }
  }

  async function imagePresent(image: string): Promise<boolean> {
    try {
      await docker.getImage(image).inspect()
      return true
    } catch (err) {
      if (statusOf(err) === 404) return false
      throw new SpawnError(`cannot inspect image "${image}": ${daemonMessage(err)}`)
    }
  }

  async function pull(image: string): Promise<void> {
    const notFound = (why: string) => new SpawnError(`image "${image}" not found: ${why}`)
    const signal = AbortSignal.timeout(pullTimeoutMs)
    let stream: NodeJS.ReadableStream
    try {
      stream = (await docker.pull(image, { abortSignal: signal })) as NodeJS.ReadableStream
    } catch (err) {
      throw notFound(signal.aborted ? `pull timed out after ${pullTimeoutMs / 1000}s` : daemonMessage(err))
    }
    const error = await new Promise<string | null>((resolve) => {
      docker.modem.followProgress(stream, (err: Error | null, output: Array<{ error?: string; errorDetail?: { message?: string } }>) => {
        if (err) return resolve(signal.aborted ? `pull timed out after ${pullTimeoutMs / 1000}s` : daemonMessage(err))
        const failed = (output ?? []).find((o) => o.error || o.errorDetail?.message)
        resolve(failed ? (failed.errorDetail?.message ?? failed.error ?? 'pull failed') : null)
      })
    })
    if (error) throw notFound(error)
    if (!(await imagePresent(image))) throw notFound('the pull finished but the image is not there')
  }

  async function ensureImage(image: string, hooks?: StartHooks): Promise<void> {
    if (await imagePresent(image)) return
    hooks?.onPulling?.(image)
    let p = pulls.get(image)
    if (!p) {
      log.info({ image }, 'pulling image')
      p = pull(image).finally(() => pulls.delete(image))
      pulls.set(image, p)
    }
    await p
    hooks?.onPulled?.(image)
  }

  async function removeByName(instanceId: string): Promise<void> {
    const c = docker.getContainer(containerName(instanceId))
    try {
      await c.inspect()
    } catch (err) {
      if (statusOf(err) === 404) return
      throw err
    }
    await removeContainer(c)
  }

  async function start(instance: TDesiredInstance, hooks?: StartHooks): Promise<InstanceHandle> {
    const image = instance.spec.image
    if (!image) throw new SpawnError('the docker driver needs an image, and the spec has none', true)
    await ensureImage(image, hooks)
    const config = containerConfig(instance, nodeName, hostIp)
    // A container of an earlier run (exited, or left by a crashed agent) holds the name.
    await removeByName(instance.instanceId).catch((err) => log.warn({ err: daemonMessage(err) }, 'cannot remove the previous container'))
    let container: Docker.Container
    try {
      container = await docker.createContainer(config)
    } catch (err) {
      if (statusOf(err) !== 409) throw new SpawnError(`cannot create the container: ${daemonMessage(err)}`)
      await removeByName(instance.instanceId).catch(() => {})
      try {
        container = await docker.createContainer(config)
      } catch (err2) {
        throw new SpawnError(`cannot create the container: ${daemonMessage(err2)}`)
      }
    }
    try {
      await container.start()
    } catch (err) {
      await removeContainer(container)
      const msg = daemonMessage(err)
      if (/address already in use|port is already allocated/i.test(msg)) {
        const port = instance.spec.ports.find((p) => msg.includes(`:${p.hostPort}`))
        throw new SpawnError(`${port ? `host port ${port.hostPort}` : 'a host port'} is already in use on this node: ${msg}`)
      }
      throw new SpawnError(`cannot start the container: ${msg}`)
    }
    let info: Docker.ContainerInspectInfo
    try {
      info = await container.inspect()
    } catch (err) {
      await removeContainer(container)
      throw new SpawnError(`the container vanished right after starting: ${daemonMessage(err)}`)
    }
    return makeHandle(container, info, false)
  }

  async function adopt(rec: PersistedInstance): Promise<InstanceHandle | null> {
    const container = docker.getContainer(rec.containerId ?? containerName(rec.instanceId))
    let info: Docker.ContainerInspectInfo
    try {
      info = await container.inspect()
    } catch (err) {
      if (statusOf(err) !== 404) log.warn({ instanceId: rec.instanceId, err: daemonMessage(err) }, 'cannot inspect the container to re-adopt it')
      return null
    }
    const labels = info.Config.Labels ?? {}
    if (labels[LABELS.instance] !== rec.instanceId || !info.State.Running) return null
    return makeHandle(docker.getContainer(info.Id), info, true)
  }

  async function listOwned(): Promise<Docker.ContainerInfo[]> {
    return docker.listContainers({ all: true, filters: { label: [`${LABELS.managed}=true`, `${LABELS.node}=${nodeName}`] } })
  }

  return {
    name: 'docker',
    start,
    adopt,
    async release(instanceId) {
      try {
        await removeByName(instanceId)
      } catch (err) {
        log.warn({ instanceId, err: daemonMessage(err) }, 'cannot remove the container of a stopped instance')
      }
    },
    async discover(known) {
      const out: PersistedInstance[] = []
      for (const c of await listOwned()) {
        const labels = c.Labels ?? {}
        const id = labels[LABELS.instance]
        if (!id || known.has(id) || c.State !== 'running') continue
        const parsed = ZPersistedInstance.safeParse({
          instanceId: id,
          driver: 'docker',
          pid: null,
          containerId: c.Id,
          processStartTime: null,
          specHash: labels[LABELS.specHash] ?? '',
          generation: Number(labels[LABELS.generation]) || 0,
          startedAt: new Date(c.Created * 1000).toISOString(),
          restarts: 0,
          state: 'running',
          exitCode: null,
          message: null,
          stopGraceSeconds: Number(labels[LABELS.stopGrace]) || 10,
          logCursor: null,
        })
        if (parsed.success) {
          log.info({ instanceId: id, container: c.Id.slice(0, 12) }, 'found a running container without state file')
          out.push(parsed.data)
        }
      }
      return out
    },
    async removeOrphans(keep) {
      for (const c of await listOwned()) {
        const id = c.Labels?.[LABELS.instance]
        if (id && keep.has(id)) continue
        log.info({ instanceId: id, container: c.Id.slice(0, 12), state: c.State }, 'removing an orphan container of this node')
        await removeContainer(docker.getContainer(c.Id))
      }
    },
    async usage(handles) {
      const out = new Map<InstanceHandle, InstanceUsage>()
      const live = new Set(handles.map((h) => h.id))
      for (const id of cpuPrev.keys()) if (!live.has(id)) cpuPrev.delete(id)
      const queue = [...handles]
      const worker = async () => {
        for (let h = queue.shift(); h; h = queue.shift()) {
          try {
            const st = await docker.getContainer(h.id).stats({ stream: false, 'one-shot': true })
            const total = st.cpu_stats?.cpu_usage?.total_usage ?? 0
            const read = Date.parse(st.read)
            const at = read > 946_684_800_000 ? read : Date.now()
            // First sample: the average since the container started.
            const prev = cpuPrev.get(h.id) ?? { total: 0, at: (h as InstanceHandle & { startedAtMs?: number }).startedAtMs ?? at }
            const elapsedNs = (at - prev.at) * 1e6
            const cpuMillis = elapsedNs > 0 && total >= prev.total ? Math.round(((total - prev.total) / elapsedNs) * 1000) : 0
            cpuPrev.set(h.id, { total, at })
            out.set(h, { cpuMillis, memoryMb: Math.round((st.memory_stats?.usage ?? 0) / 1024 / 1024) })
          } catch (err) {
            if (statusOf(err) !== 404) log.debug({ container: h.id, err: daemonMessage(err) }, 'cannot read container stats')
          }
        }
      }
      await Promise.all(Array.from({ length: Math.min(8, handles.length) }, worker))
      return out
    },
  }
}
