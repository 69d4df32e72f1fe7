/** The supervisor's interface to the agent. */
import type { Logger } from 'pino'
import type { TDesiredInstance, TInstanceReport, TLogs } from '@alveary/core/protocol'
import type { Action } from '../reconciler'
import type { DriverName, RuntimeDriver, StartContext } from '../runtime/types'
import type { PersistedInstance, StateStore } from '../state-store'
import type { InstanceVolumes } from '../volumes/instance-volumes'
import type { RestartBackoff } from './restart-policy'

export type LogEntry = TLogs['entries'][number]
export interface InstanceMetric {
  instanceId: string
  driver: DriverName
  cpuMillis: number
  memoryMb: number
}

export interface SupervisorOptions {
  drivers: Partial<Record<DriverName, RuntimeDriver>>
  store: StateStore
  logger: Logger
  backoff?: Partial<RestartBackoff>
  /** Called on every observed change of one instance (the agent batches them into status frames). */
  onChange?: (report: TInstanceReport) => void
  /**
   * What other reconcilers prepared for an instance (its network namespace…), asked right before
   * each start; a rejection fails that start like a driver error.
   */
  startContext?: (instance: TDesiredInstance) => StartContext | Promise<StartContext>
  /**
   * Instance output; without it, output is not followed at all. `shipped` is called once the
   * entries are gone for good (sent, or dropped): the persisted log cursor stays before them until then.
   */
  onLogs?: (entries: LogEntry[], shipped: () => void) => void
  /** Volumes and self-fencing around each run; without it, instances run without mounts or watchdogs. */
  volumes?: InstanceVolumes
}

export interface Supervisor {
  /** Re-adopts instances a previous agent left behind; starts nothing. */
  adopt(records: readonly PersistedInstance[]): Promise<void>
  /** Applies a full desired state (level-triggered) and returns what it decided. */
  apply(desired: readonly TDesiredInstance[]): Action[]
  /**
   * Resolves true once the instance is stopped here for good (told to stop or gone, nothing
   * running: its volumes hold their last write), false after `timeoutMs` without that.
   */
  whenStopped(instanceId: string, timeoutMs: number): Promise<boolean>
  reports(): TInstanceReport[]
  report(instanceId: string): TInstanceReport | undefined
  /** Stops a running instance as if it had crashed (a failed liveness check); its restart policy applies. */
  kill(instanceId: string, reason: string): void
  /** Process group ids of the running process-driver instances (for resource usage). */
  processGroups(): number[]
  /** CPU and memory per running instance, every driver; instances a driver cannot measure are left out. */
  usage(): Promise<InstanceMetric[]>
  /** Persists log cursors that moved, so a crashed agent's successor resends little. */
  checkpoint(): void
  /** Resolves when no worker is in the middle of a start or stop. */
  settled(): Promise<void>
  /** Stops every instance (keeping their state files), each within its grace but at most `graceCapSeconds`, and waits for it. */
  stopAll(graceCapSeconds?: number): Promise<void>
  /** Forgets everything without touching processes: they keep running for the next agent. */
  detach(): void
  /** Resolves once all state files are written. */
  flush(): Promise<void>
  /** Starts waiting for the lease look again (it was renewed). */
  poke(): void
  /** Volumes mounted by instances running or starting here. */
  mountedVolumes(): ReadonlySet<string>
  /** Stops, before anything else, every running instance whose fence `stale` says is stale. */
  fenceStale(stale: (fence: NonNullable<PersistedInstance['fence']>) => Promise<string | null>): Promise<void>
}
