import { describe, expect, it } from 'vitest'
import { fingerprintOf, networksOfNode, type LeaseRow } from './topology'

const net = { id: 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', cidr: '100.64.0.0/24', vxlanId: 4097 }
const inst = (ip: string, nodeId: string, vtep: string, ordinal = 0): LeaseRow => ({ instanceId: `i-${ip}`, lb: false, ip, networkId: net.id, app: 'web', ordinal, nodeId, vtep })
const lb = (ip: string, nodeId: string, vtep: string): LeaseRow => ({ instanceId: null, lb: true, ip, networkId: net.id, app: '', ordinal: 0, nodeId, vtep })

describe('networksOfNode with a load-balancing node', () => {
  const leases = [inst('100.64.0.2', 'b', '198.18.0.2'), lb('100.64.0.3', 'a', '198.18.0.1')]

  it('the node that joined gets its address, the instance’s node as peer and the endpoints', () => {
    const [n] = networksOfNode('a', [net], leases)
    expect(n!.lbAddress).toBe('100.64.0.3')
    expect(n!.peers).toEqual(['198.18.0.2'])
    expect(n!.endpoints.map((e) => [e.ip, e.node, e.app])).toEqual([
      ['100.64.0.2', '198.18.0.2', 'web'],
      ['100.64.0.3', '198.18.0.1', ''],
    ])
  })

  it('the instances’ nodes see it as a member (forwarding entries to it) without an address of their own', () => {
    const [n] = networksOfNode('b', [net], leases)
    expect(n!.lbAddress).toBeUndefined()
    expect(n!.peers).toEqual(['198.18.0.1'])
    expect(n!.endpoints.find((e) => e.ip === '100.64.0.3')).toMatchObject({ mac: '02:a1:64:40:00:03', node: '198.18.0.1', app: '' })
  })

  it('joining changes the network’s fingerprint (its nodes get pushed)', () => {
    expect(fingerprintOf(leases)).not.toBe(fingerprintOf(leases.slice(0, 1)))
  })
})
