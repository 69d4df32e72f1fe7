/**
 * What the supervisor asks of volumes and fencing around one instance's run: mount folders
 * and fences before it starts (and whether it may start at all), a watchdog once it runs,
 * the watchdog gone once it stopped.
 */
import type { Logger } from 'pino'
import type { TDesiredInstance } from '@alveary/core/protocol'
import type { Lease } from '../fence/lease'
import { fencedReason, startWatchdog, stopWatchdog, type FenceTargets } from '../fence/watchdog'
import { instanceDir } from '../runtime/process/driver'
import type { InstanceHandle } from '../runtime/types'
import { FencedError, prepareMounts, type HostMount, type VolumeDirs } from './store'

/** What a watchdog watches, persisted with the instance so a restarted agent can replace it. */
export interface FenceRecord {
  fences: { epochFile: string; epoch: number }[]
}

export type Prepared = { ok: true; mounts: HostMount[]; fence: FenceRecord | null } | { ok: false; wait: string } | { ok: false; refuse: string }

export interface InstanceVolumes {
  prepare(desired: TDesiredInstance): Promise<Prepared>
  /** It runs: its watchdog starts (when it needs fencing). */
  started(instanceId: string, handle: InstanceHandle, fence: FenceRecord | null): Promise<void>
  /** Re-adopted by this agent: a watchdog that is gone is started again. */
  adopted(instanceId: string, handle: InstanceHandle, fence: FenceRecord | null): Promise<void>
  stopped(instanceId: string): Promise<void>
  /** Why its watchdog killed it, if it did. */
  fencedReason(instanceId: string): Promise<string | null>
}

export const fenceTargetsOf = (h: InstanceHandle): FenceTargets => (h.processGroup ? { pgid: h.processGroup } : h.pid ? { pids: [h.pid] } : {})

export function createInstanceVolumes(deps: {
  dirs: VolumeDirs
  dataDir: string
  lease: Lease
  /** False until the first desired state after (re)connecting is applied: a stale copy must not start before it. */
  fresh(): boolean
  /** Self-fencing works here (watchdogs can run). */
  canFence(): boolean
  ownerOf(desired: TDesiredInstance): { uid: number; gid: number } | null
  /** Ends copy sessions into these volumes (a move's final copy leaves its session to the start). */
  endCopies(volumeIds: readonly string[]): Promise<void>
  log: Logger
}): InstanceVolumes {
  const dir = (id: string) => instanceDir(deps.dataDir, id)
  const watch = async (instanceId: string, handle: InstanceHandle, fence: FenceRecord | null) => {
    if (!fence || !deps.canFence() || !handle.pid) return
    await startWatchdog({ lease: deps.lease.path, watchPid: handle.pid, targets: fenceTargetsOf(handle), fences: fence.fences, dir: dir(instanceId) })
  }
  return {
    async prepare(desired) {
      const needsFence = desired.fence.stopAfterDisconnect || desired.mounts.length > 0
      if (needsFence && (!deps.fresh() || !deps.lease.valid())) return { ok: false, wait: 'waiting for the control plane to renew this node’s lease (it must not run twice)' }
      try {
        await deps.endCopies(desired.mounts.map((m) => m.volumeId))
        const mounts = await prepareMounts(deps.dirs, desired, deps.ownerOf(desired))
        return { ok: true, mounts, fence: needsFence ? { fences: mounts.flatMap((m) => (m.fence ? [m.fence] : [])) } : null }
      } catch (err) {
        if (err instanceof FencedError) return { ok: false, refuse: `fenced: ${err.message}` }
        throw err
      }
    },
    started: watch,
    async adopted(instanceId, handle, fence) {
      if (fence) await watch(instanceId, handle, fence)
    },
    stopped: (instanceId) => stopWatchdog(dir(instanceId)),
    fencedReason: (instanceId) => fencedReason(dir(instanceId)),
  }
}
