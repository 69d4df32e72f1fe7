/**
 * The process driver: one instance = one OS process group. Processes are spawned detached
 * (their own group) with output going to files, so they outlive an agent restart and a new
 * agent can re-adopt them by pid.
 */
import { spawn } from 'node:child_process'
import { closeSync, fstatSync, mkdirSync, openSync } from 'node:fs'
import { join } from 'node:path'
import type { TDesiredInstance } from '@alveary/core/protocol'
import { isSameProcess, readStartTime } from '../../proc'
import type { Sandbox } from '../../sandbox'
import { createGroupUsageMeter, type GroupUsage } from '../../usage'
import { SpawnError, type ExitInfo, type InstanceHandle, type InstanceUsage, type RuntimeDriver, type StartContext, type StartHooks } from '../types'
import { buildEnv, defaultBaseEnv } from './env'
import { exitInfoOf, makeHandle, type Confinement, type ProcessHandle } from './handle'
import { fileSize } from './log-files'

export type { ProcessHandle } from './handle'

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
  /** Runs every instance in a sandbox (sandbox/); absent: plain processes of the agent. */
  sandbox?: Sandbox | null
}

export interface ProcessDriver extends RuntimeDriver {
  readonly name: 'process'
  start(instance: TDesiredInstance, hooks?: StartHooks, ctx?: StartContext): Promise<ProcessHandle>
  /** Watches a process a previous agent started; null if it is gone or the pid was reused. */
  adoptPid(instanceId: string, pid: number, startTime: number | null): ProcessHandle | null
}

export function instanceDir(dataDir: string, instanceId: string): string {
  return join(dataDir, 'instances', instanceId)
}

export function createProcessDriver(opts: ProcessDriverOptions): ProcessDriver {
  const cwd = opts.cwd ?? process.cwd()
  const baseEnv = opts.baseEnv ?? defaultBaseEnv()
  const pollMs = opts.adoptedPollMs ?? 1000
  const logPollMs = opts.logPollMs ?? 250
  const meter = createGroupUsageMeter()
  const sandbox = opts.sandbox ?? null

  async function start(instance: TDesiredInstance, _hooks?: StartHooks, ctx: StartContext = {}): Promise<ProcessHandle> {
    const { command, args } = instance.spec
    if (!command) throw new SpawnError('the process driver needs a command, and the spec has none', true)
    const dir = instanceDir(opts.dataDir, instance.instanceId)
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    const out = openSync(join(dir, 'stdout.log'), 'a', 0o600)
    const err = openSync(join(dir, 'stderr.log'), 'a', 0o600)
    // Output of this run starts at the current ends of the files.
    const initial = { stdout: fstatSync(out).size, stderr: fstatSync(err).size }
    let child
    let confinement: Confinement | null = null
    try {
      let file: string
      let argv: string[]
      if (sandbox) {
        const s = await sandbox.prepare(instance, { appDir: cwd, instanceDir: dir, mounts: ctx.mounts ?? [], ...(ctx.netns && { netns: ctx.netns }), ...(ctx.resolvConf && { resolvConf: ctx.resolvConf }) })
        ;({ file, argv } = s)
        confinement = { cgroup: s.cgroup, memoryMb: instance.spec.memoryMb }
      } else {
        // On a tenant network the process runs in its namespace (both exec it: same pid); `ip netns exec`
        // also shows it the namespace's /etc/netns files (resolv.conf: the network's names).
        ;[file, argv] = !ctx.netns
          ? [command, args]
          : ctx.resolvConf && ctx.netns.startsWith('/run/netns/')
            ? ['ip', ['netns', 'exec', ctx.netns.slice('/run/netns/'.length), command, ...args]]
            : ['nsenter', [`--net=${ctx.netns}`, '--', command, ...args]]
      }
      child = spawn(file, argv, {
        cwd,
        env: buildEnv(instance, baseEnv, ctx.mounts, sandbox !== null),
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
    const handle = makeHandle(
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
      confinement,
    )
    // Its published ports were set up beside the spawn: not started until they work.
    try {
      await ctx.portsReady
    } catch (e) {
      await handle.stop(0)
      throw new SpawnError(`network not ready: ${(e as Error).message}`)
    }
    return handle
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
    const cgroup = sandbox?.adopt(instanceId, pid) ?? null
    return makeHandle(pid, startTime, true, { exited, check, detach: () => clearInterval(timer) }, { dir, initial, pollMs: logPollMs }, cgroup && { cgroup, memoryMb: null })
  }

  return {
    name: 'process',
    start,
    adoptPid,
    async adopt(rec) {
      return rec.pid === null ? null : adoptPid(rec.instanceId, rec.pid, rec.processStartTime)
    },
    async release(instanceId) {
      await sandbox?.release(instanceId)
    },
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
