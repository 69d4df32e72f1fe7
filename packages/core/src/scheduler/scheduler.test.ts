import { describe, expect, it } from 'vitest'
import { createManualClock, systemClock, type Clock } from '../clock'
import type { ApplyResult, Planned } from './apply'
import { FIRST_SHARE } from './fair-share'
import { createScheduler, type SchedulerConfig } from './scheduler'
import type { PlacementRequest, SchedNode } from './types'

const node = (i: number, over: Partial<SchedNode> = {}): SchedNode => ({
  id: `n${i}`,
  name: `n${String(i).padStart(4, '0')}`,
  ready: true,
  schedulable: true,
  dedicatedTenantId: null,
  drivers: new Set(['process']),
  labels: {},
  cpuCapacity: 1_000_000,
  memoryCapacity: 1_000_000,
  cpuAllocated: 0,
  memoryAllocated: 0,
  portsUsed: 0,
  portRange: null,
  appCounts: new Map(),
  ...over,
})
const nodes = (n: number) => Array.from({ length: n }, (_, i) => node(i))
const req = (tenantId: string, i: number): PlacementRequest => ({
  instanceId: `${tenantId}-${i}`,
  tenantId,
  appId: `${tenantId}-app`,
  driver: 'process',
  cpuMillis: 10,
  memoryMb: 10,
  portCount: 0,
  nodeSelector: {},
  spread: 'soft',
  strategy: 'spread',
  priority: 100,
})
const many = (tenantId: string, n: number) => Array.from({ length: n }, (_, i) => req(tenantId, i))
const accept = (plan: readonly Planned[]): ApplyResult => ({ placed: plan.map((p) => ({ instanceId: p.req.instanceId, nodeId: p.nodeId, hostPorts: [] })), conflicts: [], gone: [], nodes: [], bumped: [] })
const ports = { min: 20000, max: 29999 }

function scheduler(opts: { apply: (plan: readonly Planned[]) => Promise<ApplyResult>; fleet: SchedNode[]; config?: Partial<SchedulerConfig>; clock?: Clock; reasons?: string[] }) {
  return createScheduler({
    apply: opts.apply,
    clock: opts.clock ?? systemClock,
    config: { mode: 'parallel', workers: 2, batchSize: 100, ports, backoff: { baseMs: 1000, maxMs: 8000 }, ...opts.config },
    loadNodes: async () => opts.fleet,
    setPendingReasons: async (rows) => void opts.reasons?.push(...rows.map((r) => r.reason)),
    onPlaced: () => {},
    onError: (e) => {
      throw e
    },
  })
}

/** An in-memory applier that accepts every placement and records batches in order. */
function recordingApplier() {
  const batches: Planned[][] = []
  return {
    batches,
    async apply(plan: readonly Planned[]) {
      batches.push([...plan])
      await new Promise((r) => setImmediate(r))
      return accept(plan)
    },
  }
}

async function batchOfSmall(mode: 'parallel' | 'serial') {
  const applier = recordingApplier()
  const s = scheduler({ apply: (p) => applier.apply(p), fleet: nodes(20), config: { mode } })
  await s.start()
  s.enqueue(many('big', 10_000))
  s.enqueue([req('small', 0)])
  await s.idle()
  await s.stop()
  return { index: applier.batches.findIndex((b) => b.some((p) => p.req.instanceId === 'small-0')), batches: applier.batches.length }
}

describe('multi-tenant scheduling', () => {
  it('a tenant with 10,000 pending instances delays a tenant with 1 by at most one batch per worker', async () => {
    const parallel = await batchOfSmall('parallel')
    expect(parallel.index).toBeGreaterThanOrEqual(0)
    expect(parallel.index).toBeLessThanOrEqual(2)
    // The serial single queue, for contrast, makes it wait behind the whole flood.
    const serial = await batchOfSmall('serial')
    expect(serial.index).toBe(serial.batches - 1)
  })

  it('the fast lane places a small tenant while every regular worker is stuck in a long commit', async () => {
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    const placedSmall: string[] = []
    const s = scheduler({
      fleet: nodes(50),
      async apply(plan) {
        if (plan.some((p) => p.req.tenantId === 'big')) await gate
        else placedSmall.push(...plan.map((p) => p.req.instanceId))
        return accept(plan)
      },
    })
    await s.start()
    s.enqueue(many('big', 1000))
    s.enqueue([req('small', 0), req('small', 1)])
    await expect.poll(() => placedSmall, { timeout: 5000 }).toEqual(['small-0', 'small-1'])
    release()
    await s.idle()
    expect(s.stats().placed).toBe(1002)
    await s.stop()
  })

  it('first batches are small and grow while commits are clean, up to the batch size', async () => {
    const applier = recordingApplier()
    const s = scheduler({ apply: (p) => applier.apply(p), fleet: nodes(20), config: { workers: 1, fastLane: false, batchSize: 100 } })
    await s.start()
    s.enqueue(many('t', 400))
    await s.idle()
    await s.stop()
    expect(applier.batches.map((b) => b.length)).toEqual([FIRST_SHARE, 64, 100, 100, 100, 4])
  })

  it('workers plan on disjoint slices of the fleet, so their commits never lock the same node', async () => {
    const inFlight: Set<string>[] = []
    let overlaps = 0
    let concurrent = 0
    const s = scheduler({
      fleet: nodes(1000),
      config: { workers: 4, fastLane: false },
      async apply(plan) {
        const mine = new Set(plan.map((p) => p.nodeId))
        for (const other of inFlight) for (const id of mine) if (other.has(id)) overlaps++
        inFlight.push(mine)
        concurrent = Math.max(concurrent, inFlight.length)
        await new Promise((r) => setTimeout(r, 2))
        inFlight.splice(inFlight.indexOf(mine), 1)
        return accept(plan)
      },
    })
    await s.start()
    for (const t of ['a', 'b', 'c', 'd']) s.enqueue(many(t, 2000))
    await s.idle()
    await s.stop()
    expect(concurrent).toBe(4)
    expect(overlaps).toBe(0)
    expect(s.stats().placed).toBe(8000)
  })

  it('a batch touches one window of nodes however many instances it carries, and the fleet still fills evenly', async () => {
    const fleet = nodes(1000)
    const per = new Map<string, number>()
    const touched: number[] = []
    const s = scheduler({
      fleet,
      config: { workers: 2, fastLane: false, batchSize: 256 },
      async apply(plan) {
        touched.push(new Set(plan.map((p) => p.nodeId)).size)
        for (const p of plan) per.set(p.nodeId, (per.get(p.nodeId) ?? 0) + 1)
        await new Promise((r) => setImmediate(r))
        return accept(plan)
      },
    })
    await s.start()
    s.enqueue(many('t', 10_000))
    await s.idle()
    await s.stop()
    expect(Math.max(...touched)).toBeLessThanOrEqual(100)
    const counts = fleet.map((n) => per.get(n.id) ?? 0)
    expect(Math.min(...counts)).toBeGreaterThanOrEqual(6)
    expect(Math.max(...counts)).toBeLessThanOrEqual(13)
  })

  it('re-plans conflicts against the fresh node and parks what fits nowhere until nodes change', async () => {
    let conflictOnce = true
    const fleet = [node(0, { cpuCapacity: 15 })] // room for one instance of 10m
    const reasons: string[] = []
    const s = scheduler({
      fleet,
      reasons,
      config: { workers: 1 },
      async apply(plan) {
        if (conflictOnce) {
          conflictOnce = false
          return { placed: [], conflicts: plan.map((p) => ({ ...p, reason: 'insufficient cpu' })), gone: [], nodes: [node(0, { cpuCapacity: 15 })], bumped: [] }
        }
        return accept(plan)
      },
    })
    await s.start()
    s.enqueue([req('t', 0), req('t', 1)])
    await s.idle()
    expect(s.stats()).toMatchObject({ placed: 1, conflicts: 1 })
    expect(reasons).toEqual(['1 node: insufficient cpu: 5m free, 10m asked'])
    expect(s.stats().queues).toEqual([{ key: 't', active: 0, backoff: 0, parked: 1 }])
    fleet[0] = node(0, { cpuCapacity: 100, cpuAllocated: 10 })
    await s.refreshNodes()
    await s.idle()
    expect(s.stats().placed).toBe(2)
    await s.stop()
  })

  it('the fresh node from the applier replaces the cached one: a node cordoned meanwhile is not planned on again', async () => {
    const fleet = [node(0), node(1)]
    const batches: string[][] = []
    const s = scheduler({
      fleet,
      config: { workers: 1, fastLane: false },
      async apply(plan) {
        batches.push(plan.map((p) => p.nodeId))
        const onCordoned = plan.filter((p) => p.nodeId === 'n0')
        return {
          placed: plan.filter((p) => p.nodeId !== 'n0').map((p) => ({ instanceId: p.req.instanceId, nodeId: p.nodeId, hostPorts: [] })),
          conflicts: onCordoned.map((p) => ({ ...p, reason: 'node cordoned or draining' })),
          gone: [],
          nodes: onCordoned.length ? [node(0, { schedulable: false })] : [],
          bumped: [],
        }
      },
    })
    await s.start()
    s.enqueue(many('t', 4))
    await s.idle()
    await s.stop()
    const refused = batches[0]!.filter((id) => id === 'n0').length
    expect(refused).toBeGreaterThan(0)
    expect(s.stats()).toMatchObject({ placed: 4, conflicts: refused })
    expect(batches.slice(1).flat()).not.toContain('n0')
  })

  it('a second conflict backs off on the injected clock instead of spinning', async () => {
    const clock = createManualClock()
    let attempts = 0
    const s = scheduler({
      fleet: nodes(3),
      clock,
      config: { workers: 1, fastLane: false },
      async apply(plan) {
        attempts++
        if (attempts <= 2) return { placed: [], conflicts: plan.map((p) => ({ ...p, reason: 'insufficient cpu' })), gone: [], nodes: [], bumped: [] }
        return accept(plan)
      },
    })
    await s.start()
    s.enqueue([req('t', 0)])
    await expect.poll(() => s.stats().queues[0]?.backoff).toBe(1)
    expect(attempts).toBe(2)
    await clock.advance(999)
    expect(attempts).toBe(2)
    await clock.advance(2)
    await s.idle()
    expect(attempts).toBe(3)
    expect(s.stats().placed).toBe(1)
    await s.stop()
  })

  it('a failed commit backs off and is retried when the injected clock says so', async () => {
    const clock = createManualClock()
    let fail = true
    const errors: string[] = []
    const s = createScheduler({
      async apply(plan) {
        if (fail) {
          fail = false
          throw new Error('database unavailable')
        }
        return accept(plan)
      },
      clock,
      config: { mode: 'parallel', workers: 1, batchSize: 10, ports, backoff: { baseMs: 500, maxMs: 8000 } },
      loadNodes: async () => nodes(2),
      setPendingReasons: async () => {},
      onPlaced: () => {},
      onError: (e) => void errors.push(e.message),
    })
    await s.start()
    s.enqueue([req('t', 0)])
    await expect.poll(() => s.stats().queues[0]?.backoff).toBe(1)
    expect(errors).toEqual(['database unavailable'])
    await clock.advance(501)
    await s.idle()
    expect(s.stats()).toMatchObject({ placed: 1, errors: 1 })
    await s.stop()
  })

  it('reports time-to-placement per tenant in closed buckets', async () => {
    const clock = createManualClock(new Date('2026-01-01T00:00:00Z'))
    const s = scheduler({
      fleet: nodes(3),
      clock,
      async apply(plan) {
        await clock.advance(40)
        return accept(plan)
      },
      config: { workers: 1, fastLane: false },
    })
    await s.start()
    s.enqueue(many('t', 3))
    await s.idle()
    expect(s.takeSamples()).toEqual([])
    await clock.advance(10_000)
    expect(s.takeSamples()).toEqual([{ at: new Date('2026-01-01T00:00:00Z'), tenantId: 't', placed: 3, p50Ms: 40, p99Ms: 40 }])
    expect(s.takeSamples()).toEqual([])
    await s.stop()
  })
})
