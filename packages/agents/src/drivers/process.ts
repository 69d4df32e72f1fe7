/**
 * The process driver: one instance = one OS process group. Processes are spawned detached
 * (their own group) with output going to files, so they outlive an agent restart and a new
 * agent can re-adopt them by pid.
 */
import { spawn } from 'node:child_process'
import { closeSync, mkdirSync, openSync } from 'node:fs'
import { constants as osConstants } from 'node:os'
import { join } from 'node:path'
import type { TDesiredInstance } from '@alveary/core/protocol'
import { isGroupAlive, isSameProcess, readStartTime, signalGroup } from '../proc'

export interface ExitInfo {
  /** Exit code, or 128+signal when killed by a signal; null when unknown (adopted process). */
  exitCode: number | null
  signal: NodeJS.Signals | null
  message: string
}

export interface ProcessHandle {
  readonly pid: number
  /** Field 22 of /proc/<pid>/stat; null when /proc is unavailable. */
  readonly startTime: number | null
  /** True when this agent did not spawn it (re-adopted), so it can only be polled. */
  readonly adopted: boolean
  /** Resolves once the process has exited, whoever caused it. */
  readonly exited: Promise<ExitInfo>
  /** SIGTERM to the group, SIGKILL after the grace period; resolves once it is gone. */
  stop(graceSeconds: number): Promise<ExitInfo>
  /** Stop watching without touching the process (the agent is going away). */
  detach(): void
}

export class SpawnError extends Error {
  override name = 'SpawnError'
  /** True when retrying can never help (the spec itself cannot run here). */
  constructor(
    message: string,
    readonly permanent = false,
  ) {
    super(message)
  }
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
}

export interface ProcessDriver {
  start(instance: TDesiredInstance): Promise<ProcessHandle>
  /** Watches a process a previous agent started; null if it is gone or the pid was reused. */
  adopt(pid: number, startTime: number | null): ProcessHandle | null
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

function makeHandle(pid: number, startTime: number | null, adopted: boolean, watch: Watch): ProcessHandle {
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
    pid,
    startTime,
    adopted,
    exited,
    stop(graceSeconds) {
      stopping ??= stop(graceSeconds)
      return stopping
    },
    detach: watch.detach,
  }
}

export function createProcessDriver(opts: ProcessDriverOptions): ProcessDriver {
  const cwd = opts.cwd ?? process.cwd()
  const baseEnv = opts.baseEnv ?? defaultBaseEnv()
  const pollMs = opts.adoptedPollMs ?? 1000

  async function start(instance: TDesiredInstance): Promise<ProcessHandle> {
    const { command, args } = instance.spec
    if (!command) throw new SpawnError('the process driver needs a command, and the spec has none', true)
    const dir = instanceDir(opts.dataDir, instance.instanceId)
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    const out = openSync(join(dir, 'stdout.log'), 'a', 0o600)
    const err = openSync(join(dir, 'stderr.log'), 'a', 0o600)
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
    return makeHandle(pid, startTime, false, {
      exited,
      detach: () => {
        detached = true
        child.removeAllListeners('exit')
      },
    })
  }

  function adopt(pid: number, startTime: number | null): ProcessHandle | null {
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
    return makeHandle(pid, startTime, true, { exited, check, detach: () => clearInterval(timer) })
  }

  return { start, adopt }
}

