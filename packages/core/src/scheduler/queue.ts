import type { Clock } from '../clock'

export interface QueueItem {
  instanceId: string
  tenantId: string
  priority: number
  /** Failed attempts so far (commit errors, repeated conflicts), for backoff. */
  attempts: number
  /** Times the plan applier refused this item's placement. */
  conflicts: number
  /** When the item first entered the queue (time-to-placement). */
  enqueuedAt: number
  seq: number
}

export interface BackoffPolicy {
  baseMs: number
  maxMs: number
}

/**
 * One scheduling queue: an active heap ordered by priority then arrival, a backoff set for
 * items whose last attempt failed (doubling delay, capped), and a parking lot for items
 * that fit nowhere until something changes (a node joins, capacity frees, a quota rises).
 */
export class SchedulingQueue {
  private heap: QueueItem[] = []
  private backoff = new Map<string, { item: QueueItem; readyAt: number }>()
  private parked = new Map<string, QueueItem>()
  private known = new Set<string>()

  constructor(
    private readonly clock: Clock,
    private readonly policy: BackoffPolicy,
  ) {}

  get activeCount() {
    return this.heap.length
  }
  get backoffCount() {
    return this.backoff.size
  }
  get parkedCount() {
    return this.parked.size
  }
  has(id: string) {
    return this.known.has(id)
  }

  /** Adds an item unless it is already queued, backing off or parked. */
  add(item: QueueItem): boolean {
    if (this.known.has(item.instanceId)) return false
    this.known.add(item.instanceId)
    this.push(item)
    return true
  }

  /** Takes up to n items, highest priority first; moves due backoff items in first. */
  take(n: number): QueueItem[] {
    this.promoteDue()
    const out: QueueItem[] = []
    while (out.length < n && this.heap.length) out.push(this.pop()!)
    return out
  }

  /** The item is placed or gone: forget it. */
  done(id: string) {
    this.known.delete(id)
  }

  /** Back to the heap at once (an optimistic conflict: re-plan against fresh state). */
  retryNow(item: QueueItem) {
    this.push(item)
  }

  backOff(item: QueueItem) {
    item.attempts++
    const delay = Math.min(this.policy.baseMs * 2 ** (item.attempts - 1), this.policy.maxMs)
    this.backoff.set(item.instanceId, { item, readyAt: this.clock.now().getTime() + delay })
  }

  park(item: QueueItem) {
    this.parked.set(item.instanceId, item)
  }

  /** Something changed that may let parked items fit: move them all back. */
  unparkAll(): number {
    const n = this.parked.size
    for (const item of this.parked.values()) this.push(item)
    this.parked.clear()
    return n
  }

  /** Drops an item wherever it waits (its instance was deleted or stopped). */
  remove(id: string) {
    if (!this.known.delete(id)) return
    this.parked.delete(id)
    this.backoff.delete(id)
    const i = this.heap.findIndex((x) => x.instanceId === id)
    if (i >= 0) {
      const last = this.heap.pop()!
      if (i < this.heap.length) {
        this.heap[i] = last
        this.down(i)
        this.up(i)
      }
    }
  }

  /** Milliseconds until the next backoff item is due, or null. */
  nextDueIn(): number | null {
    let min: number | null = null
    for (const { readyAt } of this.backoff.values()) if (min === null || readyAt < min) min = readyAt
    return min === null ? null : Math.max(0, min - this.clock.now().getTime())
  }

  /** Moves backoff items whose delay has passed back to the heap. */
  promoteDue() {
    if (!this.backoff.size) return
    const now = this.clock.now().getTime()
    for (const [id, b] of this.backoff) {
      if (b.readyAt <= now) {
        this.backoff.delete(id)
        this.push(b.item)
      }
    }
  }

  private before(a: QueueItem, b: QueueItem) {
    return a.priority !== b.priority ? a.priority > b.priority : a.seq < b.seq
  }
  private push(item: QueueItem) {
    this.heap.push(item)
    this.up(this.heap.length - 1)
  }
  private pop(): QueueItem | undefined {
    const top = this.heap[0]
    const last = this.heap.pop()
    if (this.heap.length && last) {
      this.heap[0] = last
      this.down(0)
    }
    return top
  }
  private up(i: number) {
    const h = this.heap
    while (i > 0) {
      const p = (i - 1) >> 1
      if (!this.before(h[i]!, h[p]!)) break
      ;[h[i], h[p]] = [h[p]!, h[i]!]
      i = p
    }
  }
  private down(i: number) {
    const h = this.heap
    for (;;) {
      const l = 2 * i + 1
      const r = l + 1
      let m = i
      if (l < h.length && this.before(h[l]!, h[m]!)) m = l
      if (r < h.length && this.before(h[r]!, h[m]!)) m = r
      if (m === i) return
      ;[h[i], h[m]] = [h[m]!, h[i]!]
      i = m
    }
  }
}
