import { describe, expect, it } from 'vitest'
import type { PlacementRequest, SchedNode } from '../scheduler/types'
import { planPreemption, type Holder } from './preemption'

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
  cpuAllocated: 1000,
  memoryAllocated: 600,
  portsUsed: 0,
  portRange: null,
  appCounts: new Map(),
  ...over,
})
const req: PlacementRequest = { instanceId: 'p', tenantId: 't', appId: 'high', driver: 'process', cpuMillis: 500, memoryMb: 64, portCount: 1, nodeSelector: {}, spread: 'soft', strategy: 'spread', priority: 1000 }
const holder = (instanceId: string, over: Partial<Holder> = {}): Holder => ({ instanceId, appId: 'low-app', priority: 0, cpuMillis: 250, memoryMb: 64, ports: 1, stateful: false, ...over })
const ports = { min: 20000, max: 20099 }

describe('preemption', () => {
  it('evicts the fewest lower-priority instances that make room', () => {
    const plan = planPreemption({
      req,
      nodes: [node('n1')],
      holders: new Map([['n1', [holder('a'), holder('b'), holder('c', { cpuMillis: 500 })]]]),
      budget: new Map([['low-app', 5]]),
      ports,
    })
    expect(plan?.victims.map((v) => v.instanceId)).toEqual(['c'])
  })

  it('never evicts within the disruption budget of the app, nor higher or equal priorities', () => {
    const holders = new Map([['n1', [holder('a', { cpuMillis: 500 }), holder('b', { appId: 'peer', priority: 1000, cpuMillis: 500 })]]])
    expect(planPreemption({ req, nodes: [node('n1')], holders, budget: new Map([['low-app', 0]]), ports })).toBeNull()
    expect(planPreemption({ req, nodes: [node('n1')], holders, budget: new Map([['low-app', 1]]), ports })?.victims.map((v) => v.instanceId)).toEqual(['a'])
  })

  it('a budget of one allows one victim per app: two small ones of one app are not enough', () => {
    const holders = new Map([['n1', [holder('a'), holder('b')]]])
    expect(planPreemption({ req, nodes: [node('n1')], holders, budget: new Map([['low-app', 1]]), ports })).toBeNull()
    expect(planPreemption({ req, nodes: [node('n1')], holders, budget: new Map([['low-app', 2]]), ports })?.victims).toHaveLength(2)
  })

  it('skips nodes where eviction cannot help and picks the cheapest node', () => {
    const plan = planPreemption({
      req,
      nodes: [node('wrong-driver', { drivers: new Set(['docker']) }), node('two'), node('one')],
      holders: new Map([
        ['wrong-driver', [holder('x', { cpuMillis: 1000 })]],
        ['two', [holder('a'), holder('b')]],
        ['one', [holder('c', { cpuMillis: 600 })]],
      ]),
      budget: new Map([['low-app', 5]]),
      ports,
    })
    expect(plan).toEqual({ nodeId: 'one', victims: [expect.objectContaining({ instanceId: 'c' })] })
  })
})
