/**
 * What the supervisor needs from a runtime driver. One restart policy, one stop path and one
 * log pipeline for every driver: a driver only knows how to start, watch, stop and adopt the
 * thing that runs an instance (a process group, a container).
 */
import type { TDesiredInstance } from '@alveary/core/protocol'
import type { PersistedInstance } from '../state-store'
import type { HostMount } from '../volumes/store'

export type DriverName = TDesiredInstance['spec']['driver']

export interface ExitInfo {
  /** Exit code, or 128+signal when killed by a signal; null when unknown (adopted process). */
  exitCode: number | null
  signal: NodeJS.Signals | null
  message: string
  /** The kernel killed it at its memory limit. */
  oomKilled?: true
}

export interface LogLine {
  stream: 'stdout' | 'stderr'
  /** ISO 8601, UTC. */
  ts: string
  line: string
}
/** `cursor`: how far the follower got with these lines (the position right after the last one). */
export type LogSink = (lines: LogLine[], cursor: LogCursor) => void

/**
 * How far a log follower got, persisted with the instance so a re-adopted instance does not
 * resend old lines. Process driver: byte offsets in the log files. Docker driver: timestamp of
 * the last message read and how many messages carried exactly that timestamp (Podman's log
 * timestamps have whole seconds only).
 */
export interface LogCursor {
  stdout?: number
  stderr?: number
  ts?: string
  atTs?: number
}

export interface LogFollower {
  cursor(): LogCursor
  /** Reads what the instance wrote before it exited (bounded) and stops. */
  stop(): Promise<void>
  /** Stops at once, reading nothing more (the agent is going away). */
  abort(): void
}

/** The thing that runs one instance: a process group or a container. */
export interface InstanceHandle {
  readonly driver: DriverName
  /** Pid (process driver) or container id (docker driver). */
  readonly id: string
  /** Reported pid: the group leader, or the container's init process on the host. */
  readonly pid: number | null
  /** Process group for /proc based usage (process driver only). */
  readonly processGroup: number | null
  /** Field 22 of /proc/<pid>/stat (process driver only). */
  readonly startTime: number | null
  /** True when this agent did not start it (re-adopted). */
  readonly adopted: boolean
  /** Resolves once it has exited, whoever caused it. Never rejects. */
  readonly exited: Promise<ExitInfo>
  /** Graceful stop (SIGTERM, SIGKILL after the grace period); resolves once it is gone. */
  stop(graceSeconds: number): Promise<ExitInfo>
  /** Stop watching without touching it (the agent is going away). */
  detach(): void
  /**
   * Follows stdout/stderr from `from` (a cursor persisted by a previous agent) or, when null,
   * from the start of this run.
   */
  followLogs(from: LogCursor | null, sink: LogSink): LogFollower
}

/** What other reconcilers prepared for the instance before it starts. */
export interface StartContext {
  /** A network namespace to run in (e.g. /run/netns/NAME); absent: the host's network. */
  netns?: string
  /**
   * With netns: the file the instance must see at /etc/resolv.conf (its tenant network's
   * names; /etc/netns/NAME/resolv.conf, which `ip netns exec NAME` mounts by itself).
   */
  resolvConf?: string
  /**
   * With netns, for engines that cannot join a namespace by path (Docker): makes the namespace
   * of the started container (its pid) the instance's, with its interface and IP.
   */
  attachNetns?(pid: number): Promise<void>
  /**
   * With netns: resolves once the instance's published ports reach it (the node's forwards, set
   * up beside the process's own start); the start is complete, and reported running, only then.
   * Rejects: they cannot be, and the start failed.
   */
  portsReady?: Promise<void>
  /** Volumes ready to mount (volumes/store.ts): host folders and where the instance sees them. */
  mounts?: readonly HostMount[]
}

export interface StartHooks {
  /** The driver is pulling the image (observed state 'pulling'). */
  onPulling?(image: string): void
  /** Pulled; creating and starting now. */
  onPulled?(image: string): void
}

export interface InstanceUsage {
  cpuMillis: number
  memoryMb: number
}

export interface RuntimeDriver {
  readonly name: DriverName
  start(instance: TDesiredInstance, hooks?: StartHooks, ctx?: StartContext): Promise<InstanceHandle>
  /** Watches what a previous agent started; null if it is gone (or is not the same any more). */
  adopt(rec: PersistedInstance): Promise<InstanceHandle | null>
  /** Removes what a stopped or removed instance left behind (an exited container). */
  release(instanceId: string): Promise<void>
  /** CPU (millicores, average since the previous call) and memory per handle; absent = unknown. */
  usage(handles: readonly InstanceHandle[]): Promise<Map<InstanceHandle, InstanceUsage>>
  /** Gets what a start will need ready ahead of time (pulls the image), so a move's start is quick. */
  prepare?(image: string): Promise<void>
  /** Running instances this node owns that no state file knows about (state files lost). */
  discover?(known: ReadonlySet<string>): Promise<PersistedInstance[]>
  /** Removes everything this node owns whose instance is not in `keep`. */
  removeOrphans?(keep: ReadonlySet<string>): Promise<void>
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
