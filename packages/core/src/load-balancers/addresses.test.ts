import { describe, expect, it } from 'vitest'
import { canJoinNetworks, planLbAddresses } from './addresses'
import { desiredLoadBalancers, endpointsOf } from './desired'

const [T1, T2] = ['11111111-1111-4111-8111-111111111111', '22222222-2222-4222-8222-222222222222']
const [N1, N2] = ['aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb']
const apps = new Map([
  ['app-net', { tenantId: T1, networkId: N1 }],
  ['app-host', { tenantId: T1, networkId: null }],
  ['app-t2', { tenantId: T2, networkId: N2 }],
])

describe('planLbAddresses', () => {
  const lbs = [
    { tenantId: T1, appIds: ['app-net', 'app-host'] },
    { tenantId: T2, appIds: ['app-t2'] },
  ]

  it('joins every network a served load balancer targets, on nodes that can join', () => {
    const plan = planLbAddresses(
      [
        { id: 'lb1', dedicatedTenantId: null, canJoin: true },
        { id: 'lb2', dedicatedTenantId: null, canJoin: false },
      ],
      lbs,
      apps,
      [],
    )
    expect(plan.add).toEqual([
      { nodeId: 'lb1', networkId: N1 },
      { nodeId: 'lb1', networkId: N2 },
    ])
    expect(plan.remove).toEqual([])
  })

  it('a node dedicated to a tenant joins only that tenant’s networks', () => {
    const plan = planLbAddresses([{ id: 'lb1', dedicatedTenantId: T2, canJoin: true }], lbs, apps, [])
    expect(plan.add).toEqual([{ nodeId: 'lb1', networkId: N2 }])
  })

  it('never joins another tenant’s network, whatever a rule names', () => {
    const plan = planLbAddresses([{ id: 'lb1', dedicatedTenantId: null, canJoin: true }], [{ tenantId: T1, appIds: ['app-t2'] }], apps, [])
    expect(plan.add).toEqual([])
  })

  it('is idempotent, and leaves what nothing needs any more', () => {
    const nodes = [{ id: 'lb1', dedicatedTenantId: null, canJoin: true }]
    const first = planLbAddresses(nodes, lbs, apps, [])
    expect(planLbAddresses(nodes, lbs, apps, first.add)).toEqual({ add: [], remove: [] })
    // The tenant-2 load balancer is gone; the node lost the capability.
    expect(planLbAddresses(nodes, lbs.slice(0, 1), apps, first.add).remove).toEqual([{ nodeId: 'lb1', networkId: N2 }])
    expect(planLbAddresses([{ ...nodes[0]!, canJoin: false }], lbs, apps, first.add).remove).toEqual(first.add)
  })

  it('joins only with overlay, an IPv4 underlay address and the capability', () => {
    const n = { networkMode: 'overlay', address: '198.18.0.1', capabilities: { lb: 'haproxy', lbNetworks: true } }
    expect(canJoinNetworks(n)).toBe(true)
    expect(canJoinNetworks({ ...n, networkMode: 'host' })).toBe(false)
    expect(canJoinNetworks({ ...n, address: 'node-a.example' })).toBe(false)
    expect(canJoinNetworks({ ...n, capabilities: { lb: 'builtin' } })).toBe(false)
  })
})

describe('endpointsOf', () => {
  const inst = {
    ports: [{ name: 'http', containerPort: null }, { name: 'admin', containerPort: 9000 }],
    hostPorts: [31001, 31002],
    nodeAddress: '198.18.0.2',
    lease: { networkId: N1, ip: '100.64.0.5' },
  }

  it('instance IP and inner ports on a network the node joined', () => {
    expect(endpointsOf(inst, new Set([N1]))).toEqual({
      http: { address: '100.64.0.5', port: 8080, networkId: N1 },
      admin: { address: '100.64.0.5', port: 9000, networkId: N1 },
    })
  })

  it('node address and host port otherwise (not joined, host networking, no host port)', () => {
    expect(endpointsOf(inst, new Set([N2]))).toEqual({ http: { address: '198.18.0.2', port: 31001 }, admin: { address: '198.18.0.2', port: 31002 } })
    expect(endpointsOf({ ...inst, lease: null, hostPorts: [31001] }, new Set([N1]))).toEqual({ http: { address: '198.18.0.2', port: 31001 } })
  })

  it('servers carry the network they are reached in', () => {
    const lb = { id: 'c0c0c0c0-c0c0-4c0c-8c0c-c0c0c0c0c0c0', name: 'front', algorithm: 'roundrobin' as const, stickySeconds: null, drainSeconds: 5, retryUnanswered: false }
    const rules = [{ host: null, pathPrefix: null, targets: [{ appId: 'app-net', port: 'http', weight: 10 }] }]
    const byApp = new Map([
      ['app-net', [{ id: 'i1', appId: 'app-net', endpoints: endpointsOf(inst, new Set([N1])), ready: true, draining: false }]],
    ])
    const [d] = desiredLoadBalancers([{ ...lb, listeners: [{ port: 30080, protocol: 'http', rules }] }], byApp)
    expect(d!.backends[0]!.servers).toEqual([{ id: 'i1', address: '100.64.0.5', port: 8080, weight: 10, state: 'ready', networkId: N1 }])
  })
})
