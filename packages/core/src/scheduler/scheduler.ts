import type { Clock } from '../clock'
import type { ApplyResult, Planned } from './apply'
import { FAST_LANE_MAX, type Share, TenantQueues } from './fair-share'
import { NodeCache } from './node-cache'
import { PlacementStats } from './placement-stats'
import { emptiestWindow, feasibleToFind, planOne } from './plan'
import type { BackoffPolicy, QueueItem } from './queue'
import type { PlacementRequest, PortRange, SchedNode } from './types'

export interface SchedulerConfig {
  /** parallel: one queue per tenant, several workers plus a fast lane; serial: one FIFO queue, one worker. */
  mode: 'parallel' | 'serial'
  /** Regular workers in parallel mode (the fast-lane worker comes on top). */
  workers: number
  /** The largest batch (one commit). */
  batchSize: number
  ports: PortRange
  backoff: BackoffPolicy
  /** Each regular worker plans on its own slice of the fleet (default), or all start anywhere (for comparison). */
  partitions?: boolean
  /** A worker reserved for short queues (default on in parallel mode). */
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

/** Placements planned between two yields to the event loop (about a millisecond of work). */
const YIELD_EVERY = 64

interface Worker {
  lane: 'regular' | 'fast'
  /** Which slice of the node list a regular worker plans on (the fast lane roams the whole fleet). */
  region: number
  cursor: number
  /** Nodes of the batch this worker is committing. */
  held: Set<string>
  busy: boolean
}

/**
 * Multi-tenant parallel scheduler. Each tenant has its own queue; a worker fills a batch
 * from them fairly (fair-share.ts), plans it against the node cache on its own slice of
 * the fleet, so concurrent commits rarely lock the same nodes, and hands it to the plan
 * applier. A fast-lane worker serves only short queues, avoiding nodes other batches are
 * committing on, so a tenant deploying a few instances is placed within one small commit
 * however large another tenant's backlog is. See README.md for the pipeline and the
 * measurements behind each choice.
 */
export function createScheduler({ apply, clock, config, loadNodes, setPendingReasons, onPlaced, onError }: SchedulerDeps) {
  const serial = config.mode === 'serial'
  const partitions = config.partitions ?? true
  const cache = new NodeCache()
  const queues = new TenantQueues(clock, { serial, batchSize: config.batchSize, backoff: config.backoff })
  const requests = new Map<string, PlacementRequest>()
  /** Assumed but not yet committed, per node, so a fresh read of the node keeps them. */
  const inflight = new Map<string, Set<PlacementRequest>>()
  /** How many regular workers' in-flight batches hold each node. */
  const holds = new Map<string, number>()
  const counters = { placed: 0, conflicts: 0, unschedulable: 0, errors: 0 }
  const waits = new PlacementStats()
  const worker = (lane: Worker['lane'], region: number): Worker => ({ lane, region, cursor: 0, held: new Set(), busy: false })
  const regular = serial ? 1 : config.workers
  const workers: Worker[] = Array.from({ length: regular }, (_, i) => worker('regular', i))
  const fastLane = !serial && (config.fastLane ?? true) ? worker('fast', 0) : null
  if (fastLane) workers.push(fastLane)
  let seq = 0
  let sharedCursor = 0
  let stopped = true
  let waiting: (() => void)[] = []
  let running: Promise<void>[] = []
  let busy = 0
  let idleWaiters: (() => void)[] = []
  let cancelDueWake: (() => void) | null = null

  const signal = () => {
    const w = waiting
    waiting = []
    w.forEach((f) => f())
  }
  const checkIdle = () => {
    if (busy > 0 || queues.hasWork()) return
    const w = idleWaiters
    idleWaiters = []
    w.forEach((f) => f())
  }
  const scheduleDueWake = () => {
    if (cancelDueWake) return
    const due = queues.nextDueIn()
    if (due !== null)
      cancelDueWake = clock.setTimer(() => {
        cancelDueWake = null
        signal()
      }, due + 1)
  }

  /**
   * Where a worker's batch scans for nodes: a window of `feasibleToFind` nodes, the same for
   * the whole batch, so a batch touches (locks, re-reads) about that many nodes however many
   * instances it carries. A regular worker takes the least-allocated window of its own slice
   * of the fleet (so the fleet fills evenly, and workers never meet unless a slice runs out
   * of feasible nodes: the scan then goes on past the window); within the window each
   * placement still picks the best node. The fast lane's windows rotate over the whole fleet.
   */
  const windowFor = (w: Worker) => {
    const total = cache.nodes.length
    const want = feasibleToFind(total)
    if (!partitions) return (sharedCursor += want)
    if (w.lane === 'fast') return (w.cursor += want)
    const start = Math.floor((w.region * total) / regular)
    const len = Math.floor(((w.region + 1) * total) / regular) - start
    const { first, window } = emptiestWindow(cache.nodes, start, len, want, w.cursor)
    w.cursor = window + 1
    return first
  }
  /**
   * For the fast lane, nodes a regular batch is committing on: planned on only when nothing
   * else fits, so a small tenant's commit never waits for a flood batch's locks. Regular
   * workers need no such check: their slices are disjoint.
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
  const reassumeInflight = (nodeId: string) => {
    for (const r of inflight.get(nodeId) ?? []) cache.assume(nodeId, r)
  }
  const queueOf = (item: QueueItem) => queues.queueOf(item.tenantId)!

  async function runBatch(w: Worker, shares: readonly Share[]) {
    const planned: (Planned & { item: QueueItem })[] = []
    const unschedulable: { item: QueueItem; reason: string }[] = []
    const avoid = avoidFor(w)
    const offset = windowFor(w)
    let n = 0
    for (const { items } of shares)
      for (const item of items) {
        // Let I/O in between (another lane's commit completing) every few dozen placements.
        if (++n % YIELD_EVERY === 0) await new Promise<void>((r) => setImmediate(r))
        const req = requests.get(item.instanceId)
        if (!req) {
          queueOf(item).done(item.instanceId)
          continue
        }
        const res = planOne(cache.nodes, req, { ports: config.ports, offset, avoid })
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
        const byId = new Map(planned.map((p) => [p.req.instanceId, p.item]))
        const perKey = new Map<string, { placed: number; conflicts: number }>(shares.map((s) => [s.key, { placed: 0, conflicts: 0 }]))
        const placed = []
        for (const p of res.placed) {
          const item = byId.get(p.instanceId)!
          const waitedMs = now - item.enqueuedAt
          requests.delete(p.instanceId)
          queueOf(item).done(p.instanceId)
          perKey.get(queues.keyOf(item.tenantId))!.placed++
          waits.record(item.tenantId, waitedMs, now)
          placed.push({ instanceId: p.instanceId, nodeId: p.nodeId, tenantId: item.tenantId, waitedMs })
        }
        for (const id of res.gone) {
          requests.delete(id)
          queueOf(byId.get(id)!).done(id)
        }
        // A conflict is re-planned at once against the fresh node; a second one backs off,
        // so two planners that keep meeting on the same nodes drift apart instead of spinning.
        for (const c of res.conflicts) {
          const item = byId.get(c.req.instanceId)!
          perKey.get(queues.keyOf(item.tenantId))!.conflicts++
          if (++item.conflicts > 1) queueOf(item).backOff(item)
          else queueOf(item).retryNow(item)
        }
        for (const [key, r] of perKey) queues.settle(key, r.placed, r.conflicts)
        counters.placed += placed.length
        counters.conflicts += res.conflicts.length
        if (placed.length) onPlaced(placed, res.bumped)
      }
    } catch (err) {
      clearInflight()
      for (const p of planned) {
        cache.forget(p.nodeId, p.req)
        queueOf(p.item).backOff(p.item)
      }
      counters.errors++
      onError(err as Error)
    }
    if (unschedulable.length) {
      counters.unschedulable += unschedulable.length
      for (const u of unschedulable) queueOf(u.item).park(u.item)
      await setPendingReasons(unschedulable.map((u) => ({ instanceId: u.item.instanceId, reason: u.reason }))).catch(onError)
    }
  }

  async function work(w: Worker) {
    while (!stopped) {
      const shares = queues.take(w.lane === 'fast' ? FAST_LANE_MAX : config.batchSize, w.lane, fastLane !== null && !fastLane.busy)
      if (!shares.length) {
        checkIdle()
        scheduleDueWake()
        await new Promise<void>((r) => waiting.push(r))
        continue
      }
      busy++
      w.busy = true
      try {
        await runBatch(w, shares)
      } finally {
        queues.release(shares)
        w.busy = false
        busy--
      }
      // Other workers may be waiting for this batch's leftovers.
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
        queues.add({ instanceId: r.instanceId, tenantId: r.tenantId, priority: r.priority, attempts: 0, conflicts: 0, enqueuedAt: now, seq: seq++ })
      }
      signal()
    },
    /** Instances that no longer need placing (deleted, scaled down). */
    forget(instanceIds: string[]) {
      for (const id of instanceIds) {
        const r = requests.get(id)
        if (!r) continue
        requests.delete(id)
        queues.queueOf(r.tenantId)?.remove(id)
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
      if (queues.unparkAll()) signal()
    },
    /** Resolves when nothing is queued, backing off or being placed (parked items may remain). */
    idle: () =>
      new Promise<void>((resolve) => {
        idleWaiters.push(resolve)
        checkIdle()
      }),
    stats: (): SchedulerStats => ({ ...counters, queues: queues.stats() }),
    /** Time-to-placement per tenant for the buckets that have ended (each returned once). */
    takeSamples: () => waits.takeClosed(clock.now().getTime()),
    get nodes() {
      return cache.nodes
    },
  }
}
export type Scheduler = ReturnType<typeof createScheduler>
