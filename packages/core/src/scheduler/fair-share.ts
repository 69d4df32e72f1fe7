import type { Clock } from '../clock'
import { type BackoffPolicy, type QueueItem, SchedulingQueue } from './queue'

/** A queue this short is served by the fast lane: a small tenant never waits behind a flood's batches. */
export const FAST_LANE_MAX = 16
/** A queue's first share of a batch; it doubles after each clean commit up to the batch size and halves on conflicts. */
export const FIRST_SHARE = 32
const MIN_SHARE = 8

/** One queue's part of a batch. */
export interface Share {
  key: string
  items: QueueItem[]
}

/**
 * The scheduling queues, one per tenant (one for all in serial mode), and the fair-queuing
 * rule that fills a batch from them: queues no other batch holds first, then the least
 * served (placements received), then the shortest. Each queue gives at most its current
 * share, so one batch carries several tenants and a flood cannot fill a batch while
 * another tenant waits. A queue that was idle starts level with the least-served active
 * queue (it goes next, but cannot spend credit saved while it had nothing to place) and
 * with a small share, so its first placements come in the next commit.
 */
export class TenantQueues {
  private queues = new Map<string, SchedulingQueue>()
  private served = new Map<string, number>()
  private share = new Map<string, number>()
  private holders = new Map<string, number>()

  constructor(
    private readonly clock: Clock,
    private readonly opts: { serial: boolean; batchSize: number; backoff: BackoffPolicy },
  ) {}

  keyOf(tenantId: string) {
    return this.opts.serial ? '*' : tenantId
  }
  queueOf(tenantId: string) {
    return this.queues.get(this.keyOf(tenantId))
  }

  add(item: QueueItem) {
    const key = this.keyOf(item.tenantId)
    let q = this.queues.get(key)
    if (!q) this.queues.set(key, (q = new SchedulingQueue(this.clock, this.opts.backoff)))
    if (q.activeCount === 0 && q.backoffCount === 0) {
      let floor = Infinity
      for (const [k, other] of this.queues) if (k !== key && other.activeCount > 0) floor = Math.min(floor, this.served.get(k) ?? 0)
      this.served.set(key, Math.max(this.served.get(key) ?? 0, floor === Infinity ? 0 : floor))
      this.share.set(key, Math.min(FIRST_SHARE, this.opts.batchSize))
    }
    q.add(item)
  }

  /**
   * Takes up to `limit` items for one batch, fairly, and marks their queues held until
   * `release`. The fast lane takes only from short queues that no batch holds; regular
   * workers leave those to it while it is free (`fastLaneFree`).
   */
  take(limit: number, lane: 'regular' | 'fast', fastLaneFree = false): Share[] {
    const candidates: { key: string; q: SchedulingQueue; held: boolean; served: number; len: number }[] = []
    for (const [key, q] of this.queues) {
      q.promoteDue()
      const len = q.activeCount
      if (len === 0) continue
      const held = (this.holders.get(key) ?? 0) > 0
      const short = !held && len <= FAST_LANE_MAX
      if (lane === 'fast' ? !short : short && fastLaneFree) continue
      candidates.push({ key, q, held, served: this.served.get(key) ?? 0, len })
    }
    candidates.sort((a, b) => Number(a.held) - Number(b.held) || a.served - b.served || a.len - b.len)
    const out: Share[] = []
    let n = 0
    for (const c of candidates) {
      if (n >= limit) break
      const items = c.q.take(Math.min(this.share.get(c.key) ?? FIRST_SHARE, limit - n))
      n += items.length
      this.holders.set(c.key, (this.holders.get(c.key) ?? 0) + 1)
      out.push({ key: c.key, items })
    }
    return out
  }

  release(shares: readonly Share[]) {
    for (const s of shares) this.holders.set(s.key, this.holders.get(s.key)! - 1)
  }

  /** After a commit: count what the queue received and grow its share, or halve it on conflicts. */
  settle(key: string, placed: number, conflicts: number) {
    this.served.set(key, (this.served.get(key) ?? 0) + placed + conflicts)
    const s = this.share.get(key) ?? FIRST_SHARE
    this.share.set(key, conflicts ? Math.max(MIN_SHARE, s >> 1) : Math.min(this.opts.batchSize, s * 2))
  }

  /** Milliseconds until the next backoff item is due, or null. */
  nextDueIn(): number | null {
    let min: number | null = null
    for (const q of this.queues.values()) {
      const d = q.nextDueIn()
      if (d !== null && (min === null || d < min)) min = d
    }
    return min
  }

  /** Something changed that may let parked items fit: move them all back. */
  unparkAll(): number {
    let n = 0
    for (const q of this.queues.values()) n += q.unparkAll()
    return n
  }

  hasWork() {
    for (const q of this.queues.values()) if (q.activeCount > 0 || q.backoffCount > 0) return true
    return false
  }

  stats() {
    return [...this.queues.entries()].map(([key, q]) => ({ key, active: q.activeCount, backoff: q.backoffCount, parked: q.parkedCount })).filter((q) => q.active + q.backoff + q.parked > 0)
  }
}
