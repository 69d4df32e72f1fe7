/**
 * Time-to-placement per tenant, in fixed time buckets: how many instances were placed and
 * how long they waited (enqueued → committed), as p50/p99. Latencies go into a log-scale
 * histogram (about 4% wide bins from 1 ms to 10 min), so a bucket costs the same whether it
 * saw ten placements or a million. Pure: times come from the caller.
 */
export interface PlacementSample {
  /** Start of the bucket. */
  at: Date
  tenantId: string
  placed: number
  p50Ms: number
  p99Ms: number
}

const BINS = 340
const GROWTH = 1.04
const binOf = (ms: number) => (ms <= 1 ? 0 : Math.min(BINS - 1, Math.ceil(Math.log(ms) / Math.log(GROWTH))))
const upperMs = (bin: number) => Math.round(GROWTH ** bin)

/** The upper edge of the bin holding the q-quantile, never above the largest value seen. */
function quantile(t: { n: number; h: Uint32Array; max: number }, q: number): number {
  const rank = Math.max(1, Math.ceil(q * t.n))
  let seen = 0
  for (let b = 0; b < BINS; b++) {
    seen += t.h[b]!
    if (seen >= rank) return Math.min(upperMs(b), Math.round(t.max))
  }
  return Math.round(t.max)
}

export class PlacementStats {
  private buckets = new Map<number, Map<string, { n: number; h: Uint32Array; max: number }>>()

  constructor(readonly bucketMs = 10_000) {}

  record(tenantId: string, waitedMs: number, nowMs: number) {
    const start = nowMs - (nowMs % this.bucketMs)
    let bucket = this.buckets.get(start)
    if (!bucket) this.buckets.set(start, (bucket = new Map()))
    let t = bucket.get(tenantId)
    if (!t) bucket.set(tenantId, (t = { n: 0, h: new Uint32Array(BINS), max: 0 }))
    t.n++
    t.max = Math.max(t.max, waitedMs)
    t.h[binOf(waitedMs)]!++
  }

  /** Removes and returns the buckets that ended at or before `nowMs`. */
  takeClosed(nowMs: number): PlacementSample[] {
    const out: PlacementSample[] = []
    for (const [start, bucket] of this.buckets) {
      if (start + this.bucketMs > nowMs) continue
      this.buckets.delete(start)
      for (const [tenantId, t] of bucket) out.push({ at: new Date(start), tenantId, placed: t.n, p50Ms: quantile(t, 0.5), p99Ms: quantile(t, 0.99) })
    }
    return out
  }
}
