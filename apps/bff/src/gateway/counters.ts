/**
 * What the agent gateway counts, in one plain object that /metrics reads (no metrics
 * library in here, so the exporter can change without touching the gateway).
 */
export const HEARTBEAT_LAG_BUCKETS_MS = [5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000] as const

/** Why the gateway closed or refused a connection because of its peer. */
export type RejectReason =
  | 'not_json'
  | 'invalid'
  | 'binary'
  | 'too_big'
  | 'not_hello_first'
  | 'hello_twice'
  | 'hello_timeout'
  | 'overrun'
  | 'unauthorized'
  | 'version'
  | 'name_taken'
  | 'duplicate'
  | 'store_refused'
  | 'pending_per_ip'
  | 'busy'

export function createGatewayCounters() {
  return {
    /** Frames handled, by type. */
    frames: new Map<string, number>(),
    /** Connections closed or upgrades refused because of the peer (or load), by reason. */
    rejected: new Map<RejectReason, number>(),
    /** Time from a heartbeat's arrival to its durable write (group commit included). */
    heartbeatLag: { buckets: HEARTBEAT_LAG_BUCKETS_MS.map(() => 0), count: 0, sumMs: 0 },
    count(map: Map<string, number>, key: string) {
      map.set(key, (map.get(key) ?? 0) + 1)
    },
    reject(reason: RejectReason) {
      this.rejected.set(reason, (this.rejected.get(reason) ?? 0) + 1)
    },
    observeHeartbeatLag(ms: number) {
      const h = this.heartbeatLag
      h.count++
      h.sumMs += ms
      HEARTBEAT_LAG_BUCKETS_MS.forEach((le, i) => {
        if (ms <= le) h.buckets[i]!++
      })
    },
  }
}
export type GatewayCounters = ReturnType<typeof createGatewayCounters>
