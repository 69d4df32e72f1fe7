import { systemClock } from '../clock'
import { describe, expect, it } from 'vitest'
import type { ApplyResult, Planned } from './apply'
import { createScheduler } from './scheduler'
import type { PlacementRequest, SchedNode } from './types'

const nodes = (n: number): SchedNode[] =>
  Array.from({ length: n }, (_, i) => ({
    id: `n${i}`,
    name: `n${String(i).padStart(3, '0')}`,
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
  }))
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

/** An in-memory applier that accepts every placement and records batches in order. */
function recordingApplier() {
  const batches: string[][] = []
  return {
    batches,
    async apply(plan: readonly Planned[]): Promise<ApplyResult> {
      batches.push(plan.map((p) => p.req.instanceId))
      await new Promise((r) => setImmediate(r))
      return { placed: plan.map((p) => ({ instanceId: p.req.instanceId, nodeId: p.nodeId, hostPorts: [] })), conflicts: [], gone: [], allocations: new Map() }
    },
  }
}

async function timeToPlaceSmall(mode: 'parallel' | 'serial') {
  const applier = recordingApplier()
  const s = createScheduler({
    apply: (p) => applier.apply(p),
    clock: systemClock,
    config: { mode, workers: 2, batchSize: 100, ports: { min: 20000, max: 29999 }, backoff: { baseMs: 10, maxMs: 100 } },
    loadNodes: async () => nodes(20),
    setPendingReasons: async () => {},
    onPlaced: () => {},
    onError: (e) => {
      throw e
    },
  })
  await s.start()
  s.enqueue(Array.from({ length: 10_000 }, (_, i) => req('big', i)))
  s.enqueue([req('small', 0)])
  await s.idle()
  await s.stop()
  return applier.batches.findIndex((b) => b.includes('small-0'))
}

describe('multi-tenant scheduling', () => {
  it('a tenant with 10,000 pending instances delays a tenant with 1 by at most one batch per worker', async () => {
    const parallel = await timeToPlaceSmall('parallel')
    expect(parallel).toBeGreaterThanOrEqual(0)
    expect(parallel).toBeLessThanOrEqual(2)
    // The serial single queue, for contrast, makes it wait behind the whole flood.
    expect(await timeToPlaceSmall('serial')).toBe(100)
  })

  it('re-plans conflicts and parks what fits nowhere until nodes change', async () => {
    let conflictOnce = true
    const fleet = nodes(1)
    fleet[0]!.cpuCapacity = 15 // room for one instance of 10m
    const reasons: string[] = []
    const s = createScheduler({
      async apply(plan) {
        if (conflictOnce) {
          conflictOnce = false
          return { placed: [], conflicts: [...plan], gone: [], allocations: new Map([['n0', { cpu: 0, memory: 0, ports: 0, apps: new Map() }]]) }
        }
        return { placed: plan.map((p) => ({ instanceId: p.req.instanceId, nodeId: p.nodeId, hostPorts: [] })), conflicts: [], gone: [], allocations: new Map() }
      },
      clock: systemClock,
      config: { mode: 'parallel', workers: 1, batchSize: 10, ports: { min: 20000, max: 29999 }, backoff: { baseMs: 10, maxMs: 100 } },
      loadNodes: async () => fleet,
      setPendingReasons: async (rows) => void reasons.push(...rows.map((r) => r.reason)),
      onPlaced: () => {},
      onError: () => {},
    })
    await s.start()
    s.enqueue([req('t', 0), req('t', 1)])
    await s.idle()
    expect(s.stats()).toMatchObject({ placed: 1, conflicts: 1 })
    expect(reasons).toEqual(['1 node: insufficient cpu: 5m free, 10m asked'])
    expect(s.stats().queues).toEqual([{ key: 't', active: 0, backoff: 0, parked: 1 }])
    fleet[0]!.cpuCapacity = 100
    fleet[0]!.cpuAllocated = 10
    await s.refreshNodes()
    await s.idle()
    expect(s.stats().placed).toBe(2)
    await s.stop()
  })
})
