import { describe, expect, it } from 'vitest'
import { filters, rejectReason } from './filters'
import { emptiestWindow, explain, feasibleToFind, planOne } from './plan'
import { scorers } from './scorers'
import type { PlacementRequest, SchedNode } from './types'

const node = (id: string, over: Partial<SchedNode> = {}): SchedNode => ({
  id,
  name: id,
  ready: true,
  schedulable: true,
  dedicatedTenantId: null,
  drivers: new Set(['process']),
  labels: {},
  cpuCapacity: 1000,
  memoryCapacity: 1024,
  cpuAllocated: 0,
  memoryAllocated: 0,
  portsUsed: 0,
  portRange: null,
  appCounts: new Map(),
  ...over,
})
const req = (over: Partial<PlacementRequest> = {}): PlacementRequest => ({
  instanceId: 'i1',
  tenantId: 't1',
  appId: 'a1',
  driver: 'process',
  cpuMillis: 100,
  memoryMb: 64,
  portCount: 1,
  nodeSelector: {},
  spread: 'soft',
  strategy: 'spread',
  priority: 100,
  ...over,
})
const ports = { min: 20000, max: 20009 }
const reject = (name: string, n: SchedNode, r: PlacementRequest) => filters.find((f) => f.name === name)!.run(n, r, { ports })
const score = (name: string, n: SchedNode, r: PlacementRequest) => scorers.find((s) => s.name === name)!.score(n, r)

describe('filters', () => {
  it('each says why a node is rejected', () => {
    expect(reject('ready', node('n', { ready: false }), req())).toBe('node not ready')
    expect(reject('schedulable', node('n', { schedulable: false }), req())).toBe('node cordoned or draining')
    expect(reject('tenant', node('n', { dedicatedTenantId: 't2' }), req())).toBe('dedicated to another tenant')
    expect(reject('tenant', node('n', { dedicatedTenantId: 't1' }), req())).toBeNull()
    expect(reject('driver', node('n'), req({ driver: 'docker' }))).toBe('no docker driver')
    expect(reject('selector', node('n', { labels: { zone: 'a' } }), req({ nodeSelector: { zone: 'b' } }))).toBe('label zone=b missing')
    expect(reject('selector', node('n', { labels: { zone: 'b', ssd: 'yes' } }), req({ nodeSelector: { zone: 'b' } }))).toBeNull()
    expect(reject('spread', node('n', { appCounts: new Map([['a1', 1]]) }), req({ spread: 'hard' }))).toBe('already runs a replica of this app')
    expect(reject('spread', node('n', { appCounts: new Map([['a1', 1]]) }), req({ spread: 'soft' }))).toBeNull()
    expect(reject('cpu', node('n', { cpuAllocated: 950 }), req())).toBe('insufficient cpu')
    expect(reject('memory', node('n', { memoryAllocated: 1000 }), req())).toBe('insufficient memory')
    expect(reject('ports', node('n', { portsUsed: 10 }), req())).toBe('no free host ports')
    // A node that cannot sandbox process apps takes only trusted tenants' (containers are not its concern).
    expect(reject('sandbox', node('n', { processUnsandboxed: true }), req())).toBe('cannot sandbox process apps (only trusted tenants run here)')
    expect(reject('sandbox', node('n', { processUnsandboxed: true }), req({ trusted: true }))).toBeNull()
    expect(reject('sandbox', node('n', { processUnsandboxed: true, drivers: new Set(['docker']) }), req({ driver: 'docker' }))).toBeNull()
    expect(reject('sandbox', node('n'), req())).toBeNull()
  })
})

describe('scorers', () => {
  const empty = node('empty')
  const full = node('full', { cpuAllocated: 800, memoryAllocated: 800 })
  it('spread prefers the emptier node, binpack the fuller', () => {
    expect(score('allocation', empty, req())).toBeGreaterThan(score('allocation', full, req()))
    expect(score('allocation', full, req({ strategy: 'binpack' }))).toBeGreaterThan(score('allocation', empty, req({ strategy: 'binpack' })))
  })
  it('balanced prefers nodes whose cpu and memory use stay in proportion', () => {
    const skewed = node('skewed', { cpuAllocated: 800, memoryAllocated: 0 })
    expect(score('balanced', empty, req())).toBeGreaterThan(score('balanced', skewed, req()))
  })
})

describe('planOne', () => {
  it('spreads replicas of an app (soft anti-affinity) even when binpacking', () => {
    const a = node('a', { cpuAllocated: 500, memoryAllocated: 512, appCounts: new Map([['a1', 2]]) })
    const b = node('b', { cpuAllocated: 500, memoryAllocated: 512 })
    expect(planOne([a, b], req({ strategy: 'binpack' }), { ports })).toEqual({ nodeId: 'b' })
  })

  it('binpacks onto the fullest node that fits', () => {
    const a = node('a', { cpuAllocated: 100, memoryAllocated: 100 })
    const b = node('b', { cpuAllocated: 800, memoryAllocated: 800 })
    expect(planOne([a, b], req({ strategy: 'binpack', spread: 'none' }), { ports })).toEqual({ nodeId: 'b' })
    expect(planOne([a, b], req({ strategy: 'spread', spread: 'none' }), { ports })).toEqual({ nodeId: 'a' })
  })

  it('explains a rejection on every node, most common reason first', () => {
    const nodes = [
      node('n1', { memoryAllocated: 1000 }),
      node('n2', { memoryAllocated: 1000 }),
      node('n3', { memoryAllocated: 1000 }),
      node('n4', { dedicatedTenantId: 'other' }),
      node('n5', { dedicatedTenantId: 'other' }),
    ]
    expect(planOne(nodes, req(), { ports })).toEqual({ reason: '3 nodes: insufficient memory; 2 nodes: dedicated to another tenant' })
  })

  it('details the numbers when there is one node', () => {
    expect(planOne([node('n1', { memoryAllocated: 512 })], req({ memoryMb: 1024 }), { ports })).toEqual({ reason: '1 node: insufficient memory: 512 MiB free, 1024 MiB asked' })
    expect(explain(0, new Map())).toBe('no nodes have joined')
  })

  it('examines a bounded sample of a large fleet', () => {
    expect(feasibleToFind(50)).toBe(50)
    expect(feasibleToFind(5000)).toBe(100)
    expect(feasibleToFind(100_000)).toBe(100)
  })

  it('uses avoided nodes only when nothing else fits', () => {
    const busy = node('busy')
    const free = node('free', { cpuAllocated: 900 })
    const avoid = (n: SchedNode) => n === busy
    expect(planOne([busy, free], req(), { ports, avoid })).toEqual({ nodeId: 'free' })
    free.cpuAllocated = 1000
    expect(planOne([busy, free], req(), { ports, avoid })).toEqual({ nodeId: 'busy' })
    busy.memoryAllocated = 1024
    expect(planOne([busy, free], req(), { ports, avoid })).toEqual({ reason: '1 node: insufficient cpu; 1 node: insufficient memory' })
  })
})

describe('emptiestWindow', () => {
  const fleet = (loads: number[]) => loads.map((l, i) => node(`n${i}`, { cpuAllocated: l, memoryAllocated: l }))
  it('picks the least-allocated window, covering the range with full-size windows', () => {
    // windows of 2 over 5 nodes: [0,1] [2,3] [3,4] (the last overlaps instead of being short)
    expect(emptiestWindow(fleet([500, 500, 100, 900, 0]), 0, 5, 2, 0)).toEqual({ first: 3, window: 2 })
    expect(emptiestWindow(fleet([0, 0, 100, 900, 900]), 0, 5, 2, 0)).toEqual({ first: 0, window: 0 })
    // within a slice [2, 5)
    expect(emptiestWindow(fleet([0, 0, 900, 0, 0]), 2, 3, 2, 0)).toEqual({ first: 3, window: 1 })
  })
  it('rotates on ties, starting after the last window taken', () => {
    const empty = fleet([0, 0, 0, 0, 0, 0])
    expect(emptiestWindow(empty, 0, 6, 2, 0).first).toBe(0)
    expect(emptiestWindow(empty, 0, 6, 2, 1).first).toBe(2)
    expect(emptiestWindow(empty, 0, 6, 2, 2).first).toBe(4)
    expect(emptiestWindow(empty, 0, 6, 2, 3).first).toBe(0)
  })
  it('plans from the slice start when the slice is empty (more workers than nodes)', () => {
    // 2 nodes and 4 workers: slices [0,0) [0,1) [1,1) [1,2)
    expect(emptiestWindow(fleet([0, 0]), 1, 0, 100, 3)).toEqual({ first: 1, window: 0 })
    expect(emptiestWindow([], 0, 0, 100, 0)).toEqual({ first: 0, window: 0 })
  })
})

describe('rejectReason', () => {
  it('is the first filter that says no, or null', () => {
    expect(rejectReason(node('n'), req(), { ports })).toBeNull()
    expect(rejectReason(node('n', { ready: false, schedulable: false }), req(), { ports })).toBe('node not ready')
    expect(rejectReason(node('n', { cpuAllocated: 1000, memoryAllocated: 1024 }), req(), { ports })).toBe('insufficient cpu')
  })
})
