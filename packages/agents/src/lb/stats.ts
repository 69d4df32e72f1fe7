/**
 * Per-server traffic of the load balancers a node serves: the data planes count, this turns
 * their running totals into rates between two samples. Pure apart from the clock it is given.
 */
import type { TLbServerStat } from '@alveary/core/protocol'

/** What a data plane counts for one server slot (a backend's server, which one instance holds). */
export interface RawServerStat {
  lbId: string
  instanceId: string
  /** The counter's home (backend and server); a slot that changes hands starts a new series. */
  slot: string
  current: number
  /** Requests (HTTP) or connections (TCP) since the data plane started counting. */
  total: number
}

export function createRateMeter(now: () => number = Date.now) {
  let prev = new Map<string, { total: number; atMs: number }>()
  return (raw: readonly RawServerStat[]): TLbServerStat[] => {
    const at = now()
    const next = new Map<string, { total: number; atMs: number }>()
    const out = new Map<string, TLbServerStat>()
    for (const r of raw) {
      const key = `${r.slot}|${r.instanceId}`
      next.set(key, { total: r.total, atMs: at })
      const p = prev.get(key)
      // A first sample has no rate yet; a counter that went back (a reload) restarts its series.
      const perSecond = p && at > p.atMs && r.total >= p.total ? ((r.total - p.total) * 1000) / (at - p.atMs) : 0
      // An instance behind several rules of one load balancer is one server to its users.
      const id = `${r.lbId}|${r.instanceId}`
      const s = out.get(id) ?? { lbId: r.lbId, instanceId: r.instanceId, current: 0, perSecond: 0 }
      s.current += r.current
      s.perSecond = Math.round((s.perSecond + perSecond) * 10) / 10
      out.set(id, s)
    }
    prev = next
    return [...out.values()]
  }
}
