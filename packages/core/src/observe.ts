import type { Clock } from './clock'

/**
 * Measurements core takes for the BFF's /metrics (apps/bff/src/metrics.ts records them as
 * Prometheus histograms); core itself never imports a metrics library.
 */
export interface CoreObserver {
  /** Seconds from a placement request entering the scheduler to its commit on a node (the scheduler's `waitedMs`). */
  placementLatency(seconds: number): void
  /** Seconds a node's heartbeat arrived after it was due (previous heartbeat + interval). */
  heartbeatLag(seconds: number): void
}

export const ignoreObservations: CoreObserver = { placementLatency() {}, heartbeatLag() {} }

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
