/**
 * The process driver: one instance = one OS process group. Processes are spawned detached
 * (their own group) with output going to files, so they outlive an agent restart and a new
 * agent can re-adopt them by pid.
 */
import { spawn } from 'node:child_process'
import { closeSync, fstatSync, mkdirSync, openSync, statSync } from 'node:fs'
import { open, stat } from 'node:fs/promises'
import { constants as osConstants } from 'node:os'
import { join } from 'node:path'
import type { TDesiredInstance } from '@alveary/core/protocol'
import { isGroupAlive, isSameProcess, readStartTime, signalGroup } from '../proc'
import { createGroupUsageMeter, type GroupUsage } from '../usage'
import { LineSplitter } from './lines'
import { SpawnError, type ExitInfo, type InstanceHandle, type InstanceUsage, type LogCursor, type LogFollower, type LogLine, type LogSink, type RuntimeDriver } from './types'

export { SpawnError, type ExitInfo } from './types'

export interface ProcessHandle extends InstanceHandle {
  readonly driver: 'process'
  readonly pid: number
  readonly processGroup: number
}

export interface ProcessDriverOptions {
  /** Instance folders (logs, state) live in `<dataDir>/instances/<id>`. */
  dataDir: string
  /** Working directory of spawned processes; the agent's cwd by default. */
  cwd?: string
  /** Environment the platform passes through; PATH and HOME of the agent by default. */
  baseEnv?: Record<string, string>
  /** How often adopted processes (not our children, so no exit event) are checked. */
  adoptedPollMs?: number
  /** How often the stdout/stderr files are checked for new output. */
  logPollMs?: number
}

export interface ProcessDriver extends RuntimeDriver {
  readonly name: 'process'
  start(instance: TDesiredInstance): Promise<ProcessHandle>
  /** Watches a process a previous agent started; null if it is gone or the pid was reused. */
  adoptPid(instanceId: string, pid: number, startTime: number | null): ProcessHandle | null
}

export function instanceDir(dataDir: string, instanceId: string): string {
  return join(dataDir, 'instances', instanceId)
}

/** Env var suffix for a port name: `admin-ui` -> `ADMIN_UI`. */
export function portEnvName(name: string): string {
  return `PORT_${name.toUpperCase().replace(/[^A-Z0-9_]/g, '_')}`
}

/** The child's whole environment: nothing else of the agent's env leaks into tenants' processes. */
export function buildEnv(instance: TDesiredInstance, baseEnv: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = { ...baseEnv, ...instance.spec.env }
  const [first] = instance.spec.ports
  if (first) env.PORT = String(first.hostPort)
  for (const p of instance.spec.ports) env[portEnvName(p.name)] = String(p.hostPort)
  env.ALVEARY_INSTANCE_ID = instance.instanceId
  env.ALVEARY_APP = instance.appName
  env.ALVEARY_TENANT_ID = instance.tenantId
  env.ALVEARY_ORDINAL = String(instance.ordinal)
  return env
}

function defaultBaseEnv(): Record<string, string> {
  const env: Record<string, string> = {}
  if (process.env.PATH !== undefined) env.PATH = process.env.PATH
  if (process.env.HOME !== undefined) env.HOME = process.env.HOME
  return env
}

function exitInfoOf(code: number | null, signal: NodeJS.Signals | null): ExitInfo {
  if (signal) {
    const signo = osConstants.signals[signal] as number | undefined
    return { exitCode: signo ? 128 + signo : null, signal, message: `terminated by ${signal}` }
  }
  return { exitCode: code, signal: null, message: `exited with code ${code ?? 'unknown'}` }
}

/** Resolves true if `p` settles within `ms`. */
async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<false>((r) => {
    timer = setTimeout(() => r(false), ms)
  })
  try {
    return await Promise.race([p.then(() => true), timeout])
  } finally {
    clearTimeout(timer)
  }
}

interface Watch {
  /** Resolves when the group leader has exited. */
  exited: Promise<ExitInfo>
  /** Re-checks liveness now (adopted processes are polled). */
  check?: () => void
  detach(): void
}

interface LogFiles {
  dir: string
  /** Sizes of the files when this run started: a new follower starts there. */
  initial: { stdout: number; stderr: number }
  pollMs: number
}

function fileSize(path: string): number {
  try {
    return statSync(path).size
  } catch {
    return 0
  }
}

/**
 * Tails `stdout.log` and `stderr.log` of an instance by polling (the files only grow; a file
 * that shrank was truncated and is read from its start again).
 */
function followFiles(dir: string, from: { stdout: number; stderr: number }, sink: LogSink, pollMs: number): LogFollower {
  const CHUNK = 256 * 1024
  const out: LogLine[] = []
  const streams = (['stdout', 'stderr'] as const).map((name) => {
    const s = { name, path: join(dir, `${name}.log`), offset: from[name], splitter: null as unknown as LineSplitter }
    s.splitter = new LineSplitter((line) => out.push({ stream: name, ts: new Date().toISOString(), line }))
    return s
  })
  let timer: NodeJS.Timeout | null = null
  let current: Promise<void> = Promise.resolve()
  let stopped = false

  /** Reads one chunk; true when more is waiting. */
  async function readChunk(s: (typeof streams)[number]): Promise<boolean> {
    // Most polls find nothing new: a stat is cheaper than open + stat + close.
    try {
      if ((await stat(s.path)).size === s.offset) return false
    } catch {
      return false
    }
    let fh
    try {
      fh = await open(s.path, 'r')
    } catch {
      return false
    }
    try {
      const { size } = await fh.stat()
      if (size < s.offset) {
        s.offset = 0
        s.splitter.flush()
      }
      if (size === s.offset) return false
      const len = Math.min(size - s.offset, CHUNK)
      const buf = Buffer.alloc(len)
      const { bytesRead } = await fh.read(buf, 0, len, s.offset)
      s.offset += bytesRead
      s.splitter.push(buf.subarray(0, bytesRead))
      return bytesRead > 0 && s.offset < size
    } finally {
      await fh.close().catch(() => {})
    }
  }

  async function readAll(maxChunks: number): Promise<void> {
    for (const s of streams) {
      for (let i = 0; i < maxChunks && (await readChunk(s)); i++) {
        if (out.length >= 500) sink(out.splice(0))
      }
    }
    if (out.length) sink(out.splice(0))
  }

  function schedule(): void {
    if (stopped) return
    timer = setTimeout(() => {
      timer = null
      current = readAll(4).catch(() => {}).then(schedule)
    }, pollMs)
    timer.unref()
  }
  schedule()

  return {
    cursor: () => ({ stdout: streams[0]!.offset - streams[0]!.splitter.pendingBytes, stderr: streams[1]!.offset - streams[1]!.splitter.pendingBytes }),
    async stop() {
      if (stopped) return current
      stopped = true
      if (timer) clearTimeout(timer)
      await current
      // Whatever the process wrote before it exited, up to 16 MiB per stream.
      await readAll(64).catch(() => {})
      for (const s of streams) s.splitter.flush()
      if (out.length) sink(out.splice(0))
    },
    abort() {
      stopped = true
      if (timer) clearTimeout(timer)
    },
  }
}

function makeHandle(pid: number, startTime: number | null, adopted: boolean, watch: Watch, logs: LogFiles): ProcessHandle {
  let stopping: Promise<ExitInfo> | null = null
  let leaderGone = false
  const exited = watch.exited.then((info) => {
    leaderGone = true
    // Orphans of a leader that died on its own would keep its port and block the restart.
    if (!stopping && isGroupAlive(pid)) signalGroup(pid, 'SIGKILL')
    return info
  })
  const groupGone = () => leaderGone && !isGroupAlive(pid)

  async function stop(graceSeconds: number): Promise<ExitInfo> {
    signalGroup(pid, 'SIGTERM')
    const deadline = Date.now() + graceSeconds * 1000
    // Wait for the whole group, not just the leader: a child still flushing its data deserves the grace too.
    while (!groupGone() && Date.now() < deadline) {
      watch.check?.()
      await settlesWithin(exited, Math.min(50, Math.max(1, deadline - Date.now())))
      if (leaderGone) await new Promise((r) => setTimeout(r, 20))
    }
    if (!groupGone()) signalGroup(pid, 'SIGKILL')
    while (!(await settlesWithin(exited, 50))) watch.check?.()
    return exited
  }

  return {
    driver: 'process',
    id: String(pid),
    pid,
    processGroup: pid,
    startTime,
    adopted,
    exited,
    stop(graceSeconds) {
      stopping ??= stop(graceSeconds)
      return stopping
    },
    detach: watch.detach,
    followLogs(from: LogCursor | null, sink: LogSink) {
      const start = { stdout: from?.stdout ?? logs.initial.stdout, stderr: from?.stderr ?? logs.initial.stderr }
      return followFiles(logs.dir, start, sink, logs.pollMs)
    },
  }
}

export function createProcessDriver(opts: ProcessDriverOptions): ProcessDriver {
  const cwd = opts.cwd ?? process.cwd()
  const baseEnv = opts.baseEnv ?? defaultBaseEnv()
  const pollMs = opts.adoptedPollMs ?? 1000
  const logPollMs = opts.logPollMs ?? 250
  const meter = createGroupUsageMeter()

  async function start(instance: TDesiredInstance): Promise<ProcessHandle> {
    const { command, args } = instance.spec
    if (!command) throw new SpawnError('the process driver needs a command, and the spec has none', true)
    const dir = instanceDir(opts.dataDir, instance.instanceId)
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    const out = openSync(join(dir, 'stdout.log'), 'a', 0o600)
    const err = openSync(join(dir, 'stderr.log'), 'a', 0o600)
    // Output of this run starts at the current ends of the files.
    const initial = { stdout: fstatSync(out).size, stderr: fstatSync(err).size }
    let child
    try {
      child = spawn(command, args, {
        cwd,
        env: buildEnv(instance, baseEnv),
        detached: true,
        stdio: ['ignore', out, err],
      })
    } catch (e) {
      throw new SpawnError(`cannot start ${command}: ${(e as Error).message}`)
    } finally {
      // The child has its own copies of the descriptors.
      closeSync(out)
      closeSync(err)
    }
    const spawned = await new Promise<{ ok: true } | { ok: false; err: NodeJS.ErrnoException }>((resolve) => {
      child.once('spawn', () => resolve({ ok: true }))
      child.once('error', (e) => resolve({ ok: false, err: e }))
    })
    if (!spawned.ok) {
      const code = spawned.err.code
      const why =
        code === 'ENOENT'
          ? `command not found: ${command} (ENOENT; looked in PATH and ${cwd})`
          : code === 'EACCES'
            ? `command is not executable: ${command} (EACCES)`
            : `cannot start ${command}: ${spawned.err.message}`
      throw new SpawnError(why)
    }
    const pid = child.pid
    if (pid === undefined) throw new SpawnError(`cannot start ${command}: no pid`)
    // The agent must be able to exit while its instances keep running.
    child.unref()
    const startTime = readStartTime(pid)

    let detached = false
    let resolveExit!: (e: ExitInfo) => void
    const exited = new Promise<ExitInfo>((r) => (resolveExit = r))
    child.once('exit', (code, signal) => {
      if (detached) return
      resolveExit(exitInfoOf(code, signal))
    })
    // Errors after spawn (e.g. kill failures) must not become uncaught exceptions.
    child.on('error', () => {})
    return makeHandle(
      pid,
      startTime,
      false,
      {
        exited,
        detach: () => {
          detached = true
          child.removeAllListeners('exit')
        },
      },
      { dir, initial, pollMs: logPollMs },
    )
  }

  function adoptPid(instanceId: string, pid: number, startTime: number | null): ProcessHandle | null {
    if (!isSameProcess(pid, startTime)) return null
    let resolveExit!: (e: ExitInfo) => void
    const exited = new Promise<ExitInfo>((r) => (resolveExit = r))
    // Not our child, so there is no exit event and no exit status: poll.
    const check = () => {
      if (isSameProcess(pid, startTime)) return
      clearInterval(timer)
      resolveExit({ exitCode: null, signal: null, message: 'exited (exit status unknown: the process was adopted from a previous agent)' })
    }
    const timer = setInterval(check, pollMs)
    timer.unref()
    // Without a stored cursor, only output written from now on is followed (no resending of old lines).
    const dir = instanceDir(opts.dataDir, instanceId)
    const initial = { stdout: fileSize(join(dir, 'stdout.log')), stderr: fileSize(join(dir, 'stderr.log')) }
    return makeHandle(pid, startTime, true, { exited, check, detach: () => clearInterval(timer) }, { dir, initial, pollMs: logPollMs })
  }

  return {
    name: 'process',
    start,
    adoptPid,
    async adopt(rec) {
      return rec.pid === null ? null : adoptPid(rec.instanceId, rec.pid, rec.processStartTime)
    },
    async release() {},
    async usage(handles) {
      const groups = handles.flatMap((h) => (h.processGroup === null ? [] : [h.processGroup]))
      const byGroup: Map<number, GroupUsage> = await meter.sample(groups)
      const out = new Map<InstanceHandle, InstanceUsage>()
      for (const h of handles) {
        const u = h.processGroup === null ? undefined : byGroup.get(h.processGroup)
        if (u) out.set(h, u)
      }
      return out
    },
  }
}

