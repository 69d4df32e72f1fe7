import { describe, expect, it } from 'vitest'
import { type NodeSnapshot, type PlacementRequest, placeInstances } from './spread'

const node = (id: string, over: Partial<NodeSnapshot> = {}): NodeSnapshot => ({
  id,
  name: id,
  ready: true,
  schedulable: true,
  dedicatedTenantId: null,
  drivers: ['process'],
  cpuFreeMillis: 1000,
  memoryFreeMb: 1024,
  usedPorts: new Set(),
  appInstances: new Map(),
  ...over,
})
const req = (i: number, over: Partial<PlacementRequest> = {}): PlacementRequest => ({
  instanceId: `i${i}`,
  tenantId: 't1',
  appId: 'a1',
  driver: 'process',
  cpuMillis: 100,
  memoryMb: 64,
  portNames: ['http'],
  ...over,
})
const range = { min: 20000, max: 20009 }

describe('placeInstances', () => {
  it('spreads replicas of one app over nodes', () => {
    const r = placeInstances([node('n1'), node('n2'), node('n3')], [req(1), req(2), req(3)], range)
    expect(new Set(r.placed.map((p) => p.nodeId))).toEqual(new Set(['n1', 'n2', 'n3']))
    expect(r.pending).toEqual([])
  })

  it('never over-commits a node and explains what stays pending', () => {
    const r = placeInstances([node('n1', { cpuFreeMillis: 250 })], [req(1), req(2), req(3)], range)
    expect(r.placed).toHaveLength(2)
    expect(r.pending).toEqual([{ instanceId: 'i3', reason: '1 node: insufficient cpu' }])
  })

  it('aggregates reasons per node', () => {
    const nodes = [
      node('n1', { memoryFreeMb: 10 }),
      node('n2', { memoryFreeMb: 10 }),
      node('n3', { ready: false }),
      node('n4', { dedicatedTenantId: 'other' }),
      node('n5', { schedulable: false }),
      node('n6', { drivers: ['docker'] }),
    ]
    const r = placeInstances(nodes, [req(1)], range)
    expect(r.pending[0]?.reason).toBe('2 nodes: insufficient memory; 1 node: not ready; 1 node: dedicated to another tenant; 1 node: cordoned; 1 node: no process driver')
  })

  it('takes a dedicated node for its own tenant', () => {
    const r = placeInstances([node('n1', { dedicatedTenantId: 't1' })], [req(1)], range)
    expect(r.placed[0]?.nodeId).toBe('n1')
  })

  it('allocates distinct free host ports per node', () => {
    const r = placeInstances([node('n1', { usedPorts: new Set([20000, 20002]) })], [req(1, { portNames: ['http', 'admin'] }), req(2)], range)
    expect(r.placed[0]?.hostPorts).toEqual({ http: 20001, admin: 20003 })
    expect(r.placed[1]?.hostPorts).toEqual({ http: 20004 })
  })

  it('says so when no node has joined', () => {
    expect(placeInstances([], [req(1)], range).pending[0]?.reason).toBe('no nodes have joined')
  })
})
