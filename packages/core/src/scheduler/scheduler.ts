import type { Clock } from '../clock'
import type { ApplyResult, Planned } from './apply'
import { NodeCache } from './node-cache'
import { planOne } from './plan'
import { type BackoffPolicy, type QueueItem, SchedulingQueue } from './queue'
import type { PlacementRequest, PortRange, SchedNode } from './types'

export interface SchedulerConfig {
  /** parallel: one queue per tenant, served round-robin by several workers; serial: one FIFO queue, one worker. */
  mode: 'parallel' | 'serial'
  workers: number
  batchSize: number
  ports: PortRange
  backoff: BackoffPolicy
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
  onPlaced(placed: { instanceId: string; nodeId: string; tenantId: string }[]): void
  onError(err: Error): void
}

export interface SchedulerStats {
  placed: number
  conflicts: number
  unschedulable: number
  errors: number
  queues: { key: string; active: number; backoff: number; parked: number }[]
}

/**
 * Multi-tenant parallel scheduler. Each tenant has its own queue; workers take a batch
 * from the next tenant in round-robin order (one worker per tenant at a time), plan it
 * against the node cache and hand it to the plan applier. A tenant with 10,000 pending
 * instances therefore delays another tenant by at most one batch per worker.
 */
export function createScheduler({ apply, clock, config, loadNodes, setPendingReasons, onPlaced, onError }: SchedulerDeps) {
  const cache = new NodeCache()
  const queues = new Map<string, SchedulingQueue>()
  const requests = new Map<string, PlacementRequest>()
  const busy = new Set<string>()
  /** Assumed but not yet committed, per node, so a refresh from the database keeps them. */
  const inflight = new Map<string, PlacementRequest[]>()
  const stats = { placed: 0, conflicts: 0, unschedulable: 0, errors: 0 }
  const order: string[] = []
  /** Placements each queue has received: the next batch goes to the least served (fair queuing). */
  const served = new Map<string, number>()
  let seq = 0
  let offset = 0
  let stopped = true
  let waiting: (() => void)[] = []
  let workers: Promise<void>[] = []
  let idleWaiters: (() => void)[] = []
  let dueTimer: NodeJS.Timeout | null = null

  const keyOf = (tenantId: string) => (config.mode === 'serial' ? '*' : tenantId)
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
    // A queue that was idle starts level with the busiest-served active queue's floor: it
    // goes next, but cannot spend credit saved while it had nothing to place.
    if (q.activeCount === 0 && q.backoffCount === 0) {
      let floor = Infinity
      for (const [k, other] of queues) if (k !== key && other.activeCount > 0) floor = Math.min(floor, served.get(k) ?? 0)
      served.set(key, Math.max(served.get(key) ?? 0, floor === Infinity ? 0 : floor))
    }
    return q
  }

  const hasWork = () => [...queues.values()].some((q) => q.activeCount > 0 || q.backoffCount > 0) || busy.size > 0
  const checkIdle = () => {
    if (hasWork()) return
    const w = idleWaiters
    idleWaiters = []
    w.forEach((f) => f())
  }

  /** The least-served queue with active work that no other worker holds; on a tie, the shortest. */
  const nextKey = (): string | null => {
    let best: string | null = null
    let bestServed = 0
    let bestLen = 0
    for (const key of order) {
      if (busy.has(key)) continue
      const q = queues.get(key)!
      q.take(0) // promotes due backoff items
      if (q.activeCount === 0) continue
      const sv = served.get(key) ?? 0
      if (best === null || sv < bestServed || (sv === bestServed && q.activeCount < bestLen)) {
        best = key
        bestServed = sv
        bestLen = q.activeCount
      }
    }
    return best
  }

  const scheduleDueWake = () => {
    if (dueTimer) return
    let min: number | null = null
    for (const q of queues.values()) {
      const d = q.nextDueIn()
      if (d !== null && (min === null || d < min)) min = d
    }
    if (min !== null)
      dueTimer = setTimeout(() => {
        dueTimer = null
        signal()
      }, min + 1)
  }

  const refreshFrom = (allocations: Map<string, { cpu: number; memory: number; ports: number; apps: Map<string, number> }>) => {
    for (const [nodeId, a] of allocations) {
      cache.setAllocation(nodeId, { cpu: a.cpu, memory: a.memory, ports: a.ports, apps: new Map(a.apps) })
      for (const r of inflight.get(nodeId) ?? []) cache.assume(nodeId, r)
    }
  }

  async function runBatch(key: string) {
    const q = queues.get(key)!
    const items = q.take(config.batchSize)
    const planned: (Planned & { item: QueueItem })[] = []
    const unschedulable: { item: QueueItem; reason: string }[] = []
    for (const item of items) {
      const req = requests.get(item.instanceId)
      if (!req) {
        q.done(item.instanceId)
        continue
      }
      const res = planOne(cache.nodes, req, { ports: config.ports, offset: offset++ })
      if ('nodeId' in res) {
        cache.assume(res.nodeId, req)
        inflight.set(res.nodeId, [...(inflight.get(res.nodeId) ?? []), req])
        planned.push({ req, nodeId: res.nodeId, item })
      } else unschedulable.push({ item, reason: res.reason })
    }
    const clearInflight = () => {
      for (const p of planned) {
        const list = inflight.get(p.nodeId)
        const i = list?.indexOf(p.req) ?? -1
        if (list && i >= 0) list.splice(i, 1)
        if (list && !list.length) inflight.delete(p.nodeId)
      }
    }
    try {
      const res = await apply(planned, config.ports)
      clearInflight()
      refreshFrom(res.allocations)
      const placed = []
      for (const p of res.placed) {
        const req = requests.get(p.instanceId)
        requests.delete(p.instanceId)
        q.done(p.instanceId)
        if (req) placed.push({ instanceId: p.instanceId, nodeId: p.nodeId, tenantId: req.tenantId })
      }
      for (const id of res.gone) {
        requests.delete(id)
        q.done(id)
      }
      const byId = new Map(planned.map((p) => [p.req.instanceId, p.item]))
      for (const c of res.conflicts) q.retryNow(byId.get(c.req.instanceId)!)
      stats.placed += placed.length
      served.set(key, (served.get(key) ?? 0) + placed.length + res.conflicts.length)
      stats.conflicts += res.conflicts.length
      if (placed.length) onPlaced(placed)
    } catch (err) {
      clearInflight()
      for (const p of planned) {
        cache.forget(p.nodeId, p.req)
        q.backOff(p.item)
      }
      stats.errors++
      onError(err as Error)
    }
    if (unschedulable.length) {
      stats.unschedulable += unschedulable.length
      for (const u of unschedulable) q.park(u.item)
      await setPendingReasons(unschedulable.map((u) => ({ instanceId: u.item.instanceId, reason: u.reason }))).catch(onError)
    }
  }

  async function worker() {
    while (!stopped) {
      const key = nextKey()
      if (!key) {
        checkIdle()
        scheduleDueWake()
        await new Promise<void>((r) => waiting.push(r))
        continue
      }
      busy.add(key)
      try {
        await runBatch(key)
      } finally {
        busy.delete(key)
      }
      // Another worker may be waiting for this tenant's remaining work.
      signal()
    }
  }

  return {
    async start() {
      cache.replaceAll(await loadNodes())
      stopped = false
      const n = config.mode === 'serial' ? 1 : config.workers
      workers = Array.from({ length: n }, () => worker())
    },
    async stop() {
      stopped = true
      if (dueTimer) clearTimeout(dueTimer)
      signal()
      await Promise.all(workers)
      workers = []
    },
    /** Queues instances for placement; already queued ones are left where they are. */
    enqueue(reqs: PlacementRequest[]) {
      const now = clock.now().getTime()
      for (const r of reqs) {
        requests.set(r.instanceId, r)
        queueFor(keyOf(r.tenantId)).add({ instanceId: r.instanceId, tenantId: r.tenantId, priority: r.priority, attempts: 0, enqueuedAt: now, seq: seq++ })
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
          for (const r of inflight.get(n.id) ?? []) cache.assume(n.id, r)
        }
      } else {
        cache.replaceAll(fresh)
        for (const [id, list] of inflight) for (const r of list) cache.assume(id, r)
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
        ...stats,
        queues: [...queues.entries()].map(([key, q]) => ({ key, active: q.activeCount, backoff: q.backoffCount, parked: q.parkedCount })).filter((q) => q.active + q.backoff + q.parked > 0),
      }
    },
    get nodes() {
      return cache.nodes
    },
  }
}
export type Scheduler = ReturnType<typeof createScheduler>
