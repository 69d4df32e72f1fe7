import type { Clock } from './clock'

/**
 * Measurements core takes for the BFF's /metrics (apps/bff/src/metrics.ts records them as
 * Prometheus histograms); core itself never imports a metrics library.
 */
export interface CoreObserver {
  /** Seconds from a placement request entering the scheduler to its commit on a node. */
  placementLatency(seconds: number): void
  /** Seconds a node's heartbeat arrived after it was due (previous heartbeat + interval). */
  heartbeatLag(seconds: number): void
}

export const ignoreObservations: CoreObserver = { placementLatency() {}, heartbeatLag() {} }

/** When each queued instance entered the scheduler, to time its placement. */
export function createPlacementTimer(clock: Clock) {
  const since = new Map<string, number>()
  return {
    enqueued(ids: string[]) {
      const now = clock.now().getTime()
      for (const id of ids) if (!since.has(id)) since.set(id, now)
    },
    /** Seconds each placed instance waited; forgets them. */
    placed(ids: string[]): number[] {
      const now = clock.now().getTime()
      return ids.flatMap((id) => {
        const t = since.get(id)
        since.delete(id)
        return t === undefined ? [] : [(now - t) / 1000]
      })
    },
    forget(ids?: string[]) {
      if (!ids) since.clear()
      else for (const id of ids) since.delete(id)
    },
  }
}

/** How late each heartbeat of a node is, against the heartbeat interval; null for a node's first. */
export function createHeartbeatLag(clock: Clock, intervalMs: number) {
  const last = new Map<string, number>()
  return (nodeId: string): number | null => {
    const now = clock.now().getTime()
    const prev = last.get(nodeId)
    last.set(nodeId, now)
    return prev === undefined ? null : Math.max(0, now - prev - intervalMs) / 1000
  }
}
