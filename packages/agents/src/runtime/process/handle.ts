/** One process group as the supervisor sees it: watched, stopped as a whole group, followed for output. */
import { constants as osConstants } from 'node:os'
import { isGroupAlive, signalGroup } from '../../proc'
import type { InstanceCgroup } from '../../sandbox'
import type { ExitInfo, InstanceHandle, LogCursor, LogSink } from '../types'
import { followFiles } from './log-files'

export interface ProcessHandle extends InstanceHandle {
  readonly driver: 'process'
  readonly pid: number
  readonly processGroup: number
}

export function exitInfoOf(code: number | null, signal: NodeJS.Signals | null): ExitInfo {
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

export interface Watch {
  /** Resolves when the group leader has exited. */
  exited: Promise<ExitInfo>
  /** Re-checks liveness now (adopted processes are polled). */
  check?: () => void
  detach(): void
}

export interface LogFiles {
  dir: string
  /** Sizes of the files when this run started: a new follower starts there. */
  initial: { stdout: number; stderr: number }
  pollMs: number
}

/** A sandboxed run: its cgroup holds everything it started, wherever it moved to (setsid, daemons). */
export interface Confinement {
  cgroup: InstanceCgroup
  /** The limit, for the OOM message (unknown for a run adopted from a previous agent). */
  memoryMb: number | null
}

export function makeHandle(pid: number, startTime: number | null, adopted: boolean, watch: Watch, logs: LogFiles, confinement: Confinement | null = null): ProcessHandle {
  let stopping: Promise<ExitInfo> | null = null
  let leaderGone = false
  const exited = watch.exited.then(async (info) => {
    leaderGone = true
    // Orphans of a leader that died on its own would keep its port and block the restart.
    if (!stopping && isGroupAlive(pid)) signalGroup(pid, 'SIGKILL')
    if (!confinement) return info
    // Nothing of the run outlives it (what left the process group included), then the cgroup goes.
    if (!stopping) await confinement.cgroup.killAll()
    const oom = (await confinement.cgroup.oomKills()) > 0
    if (!stopping) await confinement.cgroup.remove().catch(() => {})
    // The kernel killed it for its memory limit: say so, not just "code 137".
    if (oom) return { exitCode: info.exitCode ?? 137, signal: 'SIGKILL' as const, oomKilled: true as const, message: `out of memory: killed at its memory limit${confinement.memoryMb === null ? '' : ` (${confinement.memoryMb} MiB)`}` }
    return info
  })
  const cgroupEmpty = async () => !confinement || (await confinement.cgroup.pids()).length === 0
  const groupGone = async () => leaderGone && !isGroupAlive(pid) && (await cgroupEmpty())

  async function stop(graceSeconds: number): Promise<ExitInfo> {
    signalGroup(pid, 'SIGTERM')
    const deadline = Date.now() + graceSeconds * 1000
    // Wait for the whole group, not just the leader: a child still flushing its data deserves the grace too.
    while (!(await groupGone()) && Date.now() < deadline) {
      watch.check?.()
      await settlesWithin(exited, Math.min(50, Math.max(1, deadline - Date.now())))
      // Children still around: give them a moment (a group already gone goes on at once: a move waits on it).
      if (leaderGone && !(await groupGone())) await new Promise((r) => setTimeout(r, 20))
    }
    if (!(await groupGone())) {
      signalGroup(pid, 'SIGKILL')
      // Nothing of a sandboxed instance survives its stop, not even what left the process group.
      await confinement?.cgroup.killAll()
    }
    while (!(await settlesWithin(exited, 50))) watch.check?.()
    await confinement?.cgroup.killAll()
    await confinement?.cgroup.remove().catch(() => {})
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
