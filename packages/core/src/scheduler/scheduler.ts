import type { Clock } from '../clock'
import type { ApplyResult, Planned } from './apply'
import { NodeCache } from './node-cache'
import { PlacementStats } from './placement-stats'
import { feasibleToFind, planOne } from './plan'
import { type BackoffPolicy, type QueueItem, SchedulingQueue } from './queue'
import type { PlacementRequest, PortRange, SchedNode } from './types'

export interface SchedulerConfig {
  /** parallel: one queue per tenant, several workers plus a fast lane; serial: one FIFO queue, one worker. */
  mode: 'parallel' | 'serial'
  /** Regular workers in parallel mode (the fast-lane worker comes on top). */
  workers: number
  /** The largest batch; a queue's first batches are smaller and grow while its commits are clean. */
  batchSize: number
  ports: PortRange
  backoff: BackoffPolicy
  /** Each worker plans on its own slice of the fleet (default), or all start anywhere (for comparison). */
  partitions?: boolean
  /** A worker reserved for queues with few pending instances (default on in parallel mode). */
  fastLane?: boolean
}

export interface SchedulerDeps {
  /** The plan applier (applyPlan over the database; tests may pass their own). */
  apply(plan: readonly Planned[], ports: PortRange): Promise<ApplyResult>
  clock: Clock
  config: SchedulerConfig
  /** Fresh nodes from the stores (all, or the ids given). */
  loadNodes(ids?: string[]): Promise<SchedNode[]>
  /** Records why instances could not be placed. */
  setPendingReasons(rows: { instanceId: string; reason: string }[]): Promise<void>
  /**
   * Committed placements, with how long each waited since it was queued, and every node
   * whose desired generation the commit bumped (its agent needs the new desired state).
   */
  onPlaced(placed: { instanceId: string; nodeId: string; tenantId: string; waitedMs: number }[], nodeIds: string[]): void
  onError(err: Error): void
}

export interface SchedulerStats {
  placed: number
  conflicts: number
  unschedulable: number
  errors: number
  queues: { key: string; active: number; backoff: number; parked: number }[]
}

/** A queue this short is served by the fast lane: a small tenant never waits behind a flood's batches. */
export const FAST_LANE_MAX = 16
/** A queue's first batch; it doubles after each clean commit up to the configured size and halves on conflicts. */
export const FIRST_BATCH = 32
const MIN_BATCH = 8

interface Worker {
  lane: 'regular' | 'fast'
  /** Which slice of the node list a regular worker plans on (the fast lane roams the whole fleet). */
  region: number
  cursor: number
  /** Nodes of the batch this worker is committing. */
  held: Set<string>
}

/**
 * Multi-tenant parallel scheduler. Each tenant has its own queue. Workers take a batch from
 * the least-served queue (fair queuing), plan it against the node cache, each on its own
 * slice of the fleet so their optimistic commits rarely lock the same nodes, and hand it to
 * the plan applier. A fast-lane worker serves only short queues, so a tenant deploying a few
 * instances is placed within one small commit however large another tenant's backlog is.
 * See README.md for the pipeline and the measurements behind each choice.
 */
export function createScheduler({ apply, clock, config, loadNodes, setPendingReasons, onPlaced, onError }: SchedulerDeps) {
  const cache = new NodeCache()
  const queues = new Map<string, SchedulingQueue>()
  const requests = new Map<string, PlacementRequest>()
  /** Workers currently holding each queue. */
  const holders = new Map<string, number>()
  /** Current batch size per queue (small first, grows while commits are clean). */
  const batchOf = new Map<string, number>()
  /** Assumed but not yet committed, per node, so a fresh read of the node keeps them. */
  const inflight = new Map<string, Set<PlacementRequest>>()
  const counters = { placed: 0, conflicts: 0, unschedulable: 0, errors: 0 }
  const waits = new PlacementStats()
  const order: string[] = []
  /** Placements each queue has received: the next batch goes to the least served (fair queuing). */
  const served = new Map<string, number>()
  const serial = config.mode === 'serial'
  const partitions = config.partitions ?? true
  const worker = (lane: Worker['lane'], region: number): Worker => ({ lane, region, cursor: 0, held: new Set() })
  const regular = serial ? 1 : config.workers
  const workers: Worker[] = Array.from({ length: regular }, (_, i) => worker('regular', i))
  if (!serial && (config.fastLane ?? true)) workers.push(worker('fast', 0))
  /** How many workers' in-flight batches hold each node. */
  const holds = new Map<string, number>()
  let seq = 0
  let sharedCursor = 0
  let stopped = true
  let waiting: (() => void)[] = []
  let running: Promise<void>[] = []
  let busy = 0
  let idleWaiters: (() => void)[] = []
  let cancelDueWake: (() => void) | null = null

  const keyOf = (tenantId: string) => (serial ? '*' : tenantId)
  const signal = () => {
    const w = waiting
    waiting = []
    w.forEach((f) => f())
  }
  const queueFor = (key: string) => {
    let q = queues.get(key)
    if (!q) {
      q = new SchedulingQueue(clock, config.backoff)
      queues.set(key, q)
      order.push(key)
    }
    // A queue that was idle starts level with the least-served active queue: it goes next,
    // but cannot spend credit saved while it had nothing to place. Its batches start small.
    if (q.activeCount === 0 && q.backoffCount === 0) {
      let floor = Infinity
      for (const [k, other] of queues) if (k !== key && other.activeCount > 0) floor = Math.min(floor, served.get(k) ?? 0)
      served.set(key, Math.max(served.get(key) ?? 0, floor === Infinity ? 0 : floor))
      batchOf.set(key, Math.min(FIRST_BATCH, config.batchSize))
    }
    return q
  }

  const hasWork = () => busy > 0 || [...queues.values()].some((q) => q.activeCount > 0 || q.backoffCount > 0)
  const checkIdle = () => {
    if (hasWork()) return
    const w = idleWaiters
    idleWaiters = []
    w.forEach((f) => f())
  }

  /**
   * The queue a worker serves next: the least-served queue with work (on a tie, the
   * shortest), preferring queues no other worker holds. The fast lane takes only short
   * queues nobody holds; regular workers may share a long queue when nothing else waits.
   */
  const pick = (w: Worker): string | null => {
    let best: string | null = null
    let bestHeld = true
    let bestServed = 0
    let bestLen = 0
    for (const key of order) {
      const q = queues.get(key)!
      q.promoteDue()
      const len = q.activeCount
      if (len === 0) continue
      const held = (holders.get(key) ?? 0) > 0
      if (w.lane === 'fast' && (held || len > FAST_LANE_MAX)) continue
      const sv = served.get(key) ?? 0
      const better = best === null || (bestHeld && !held) || (held === bestHeld && (sv < bestServed || (sv === bestServed && len < bestLen)))
      if (better) {
        best = key
        bestHeld = held
        bestServed = sv
        bestLen = len
      }
    }
    return best
  }

  /**
   * Where the worker's next placement starts scanning: a regular worker rotates through its
   * own slice of the fleet (so its window of candidates never reaches a neighbour's slice
   * unless its own has too few feasible nodes); the fast lane rotates over the whole fleet.
   */
  const offsetFor = (w: Worker) => {
    if (!partitions) return sharedCursor++
    const total = cache.nodes.length
    if (w.lane === 'fast') return w.cursor++
    const start = Math.floor((w.region * total) / regular)
    const len = Math.floor(((w.region + 1) * total) / regular) - start
    return start + (w.cursor++ % Math.max(1, len - feasibleToFind(total) + 1))
  }
  /**
   * For the fast lane, nodes another worker's batch is committing on: planned on only when
   * nothing else fits, so a small tenant's commit never waits for a flood batch's locks.
   * Regular workers need no such check: their slices are disjoint.
   */
  const avoidFor = (w: Worker) => (partitions && w.lane === 'fast' ? (n: SchedNode) => holds.has(n.id) : undefined)
  const hold = (w: Worker, nodeId: string) => {
    if (w.lane === 'fast' || w.held.has(nodeId)) return
    w.held.add(nodeId)
    holds.set(nodeId, (holds.get(nodeId) ?? 0) + 1)
  }
  const releaseHolds = (w: Worker) => {
    for (const id of w.held) {
      const c = holds.get(id)! - 1
      if (c > 0) holds.set(id, c)
      else holds.delete(id)
    }
    w.held.clear()
  }

  const scheduleDueWake = () => {
    if (cancelDueWake) return
    let min: number | null = null
    for (const q of queues.values()) {
      const d = q.nextDueIn()
      if (d !== null && (min === null || d < min)) min = d
    }
    if (min !== null)
      cancelDueWake = clock.setTimer(() => {
        cancelDueWake = null
        signal()
      }, min + 1)
  }

  const reassumeInflight = (nodeId: string) => {
    for (const r of inflight.get(nodeId) ?? []) cache.assume(nodeId, r)
  }

  async function runBatch(w: Worker, key: string) {
    const q = queues.get(key)!
    const items = q.take(batchOf.get(key) ?? FIRST_BATCH)
    const planned: (Planned & { item: QueueItem })[] = []
    const avoid = avoidFor(w)
    const unschedulable: { item: QueueItem; reason: string }[] = []
    for (const item of items) {
      const req = requests.get(item.instanceId)
      if (!req) {
        q.done(item.instanceId)
        continue
      }
      const res = planOne(cache.nodes, req, { ports: config.ports, offset: offsetFor(w), avoid })
      if ('nodeId' in res) {
        cache.assume(res.nodeId, req)
        hold(w, res.nodeId)
        let set = inflight.get(res.nodeId)
        if (!set) inflight.set(res.nodeId, (set = new Set()))
        set.add(req)
        planned.push({ req, nodeId: res.nodeId, item })
      } else unschedulable.push({ item, reason: res.reason })
    }
    const clearInflight = () => {
      releaseHolds(w)
      for (const p of planned) {
        const set = inflight.get(p.nodeId)
        set?.delete(p.req)
        if (set && !set.size) inflight.delete(p.nodeId)
      }
    }
    try {
      const res = planned.length ? await apply(planned, config.ports) : null
      if (res) {
        clearInflight()
        for (const n of res.nodes) {
          cache.upsert(n)
          reassumeInflight(n.id)
        }
        const now = clock.now().getTime()
        const byId = new Map(planned.map((p) => [p.req.instanceId, p]))
        const placed = []
        for (const p of res.placed) {
          const item = byId.get(p.instanceId)!.item
          const waitedMs = now - item.enqueuedAt
          requests.delete(p.instanceId)
          q.done(p.instanceId)
          waits.record(item.tenantId, waitedMs, now)
          placed.push({ instanceId: p.instanceId, nodeId: p.nodeId, tenantId: item.tenantId, waitedMs })
        }
        for (const id of res.gone) {
          requests.delete(id)
          q.done(id)
        }
        // A conflict is re-planned at once against the fresh node; a second one backs off,
        // so two planners that keep meeting on the same nodes drift apart instead of spinning.
        for (const c of res.conflicts) {
          const item = byId.get(c.req.instanceId)!.item
          if (++item.conflicts > 1) q.backOff(item)
          else q.retryNow(item)
        }
        const size = batchOf.get(key) ?? FIRST_BATCH
        batchOf.set(key, res.conflicts.length ? Math.max(MIN_BATCH, size >> 1) : Math.min(config.batchSize, size * 2))
        counters.placed += placed.length
        counters.conflicts += res.conflicts.length
        served.set(key, (served.get(key) ?? 0) + placed.length + res.conflicts.length)
        if (placed.length) onPlaced(placed, res.bumped)
      }
    } catch (err) {
      clearInflight()
      for (const p of planned) {
        cache.forget(p.nodeId, p.req)
        q.backOff(p.item)
      }
      counters.errors++
      onError(err as Error)
    }
    if (unschedulable.length) {
      counters.unschedulable += unschedulable.length
      for (const u of unschedulable) q.park(u.item)
      await setPendingReasons(unschedulable.map((u) => ({ instanceId: u.item.instanceId, reason: u.reason }))).catch(onError)
    }
  }

  async function work(w: Worker) {
    while (!stopped) {
      const key = pick(w)
      if (!key) {
        checkIdle()
        scheduleDueWake()
        await new Promise<void>((r) => waiting.push(r))
        continue
      }
      holders.set(key, (holders.get(key) ?? 0) + 1)
      busy++
      try {
        await runBatch(w, key)
      } finally {
        holders.set(key, holders.get(key)! - 1)
        busy--
      }
      // Other workers may be waiting for this queue's remaining work.
      signal()
    }
  }

  return {
    async start() {
      cache.replaceAll(await loadNodes())
      stopped = false
      running = workers.map((w) => work(w))
    },
    async stop() {
      stopped = true
      cancelDueWake?.()
      cancelDueWake = null
      signal()
      await Promise.all(running)
      running = []
    },
    /** Queues instances for placement; already queued ones are left where they are. */
    enqueue(reqs: PlacementRequest[]) {
      const now = clock.now().getTime()
      for (const r of reqs) {
        requests.set(r.instanceId, r)
        queueFor(keyOf(r.tenantId)).add({ instanceId: r.instanceId, tenantId: r.tenantId, priority: r.priority, attempts: 0, conflicts: 0, enqueuedAt: now, seq: seq++ })
      }
      signal()
    },
    /** Instances that no longer need placing (deleted, scaled down). */
    forget(instanceIds: string[]) {
      for (const id of instanceIds) {
        const r = requests.get(id)
        if (!r) continue
        requests.delete(id)
        queues.get(keyOf(r.tenantId))?.remove(id)
      }
    },
    isQueued: (instanceId: string) => requests.has(instanceId),
    /** Nodes changed (joined, ready, cordoned, capacity freed): reload them and retry parked work. */
    async refreshNodes(ids?: string[]) {
      const fresh = await loadNodes(ids)
      if (ids) {
        const seen = new Set(fresh.map((n) => n.id))
        ids.filter((id) => !seen.has(id)).forEach((id) => cache.remove(id))
        for (const n of fresh) {
          cache.upsert(n)
          reassumeInflight(n.id)
        }
      } else {
        cache.replaceAll(fresh)
        for (const id of inflight.keys()) reassumeInflight(id)
      }
      let moved = 0
      for (const q of queues.values()) moved += q.unparkAll()
      if (moved) signal()
    },
    /** Resolves when nothing is queued, backing off or being placed (parked items may remain). */
    idle: () =>
      new Promise<void>((resolve) => {
        idleWaiters.push(resolve)
        checkIdle()
      }),
    stats(): SchedulerStats {
      return {
        ...counters,
        queues: [...queues.entries()].map(([key, q]) => ({ key, active: q.activeCount, backoff: q.backoffCount, parked: q.parkedCount })).filter((q) => q.active + q.backoff + q.parked > 0),
      }
    },
    /** Time-to-placement per tenant for the buckets that have ended (each returned once). */
    takeSamples: () => waits.takeClosed(clock.now().getTime()),
    get nodes() {
      return cache.nodes
    },
  }
}
export type Scheduler = ReturnType<typeof createScheduler>
