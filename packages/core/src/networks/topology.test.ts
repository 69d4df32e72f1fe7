import { describe, expect, it } from 'vitest'
import { fingerprintOf, networksOfNode, readyForNames, type LeaseRow } from './topology'

const net = { id: 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', cidr: '100.64.0.0/24', vxlanId: 4097 }
const inst = (ip: string, nodeId: string, vtep: string, ordinal = 0, ready = true): LeaseRow => ({ instanceId: `i-${ip}`, lb: false, ip, networkId: net.id, app: 'web', ordinal, nodeId, vtep, ready })
const lb = (ip: string, nodeId: string, vtep: string): LeaseRow => ({ instanceId: null, lb: true, ip, networkId: net.id, app: '', ordinal: 0, nodeId, vtep, ready: true })

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

describe('which instances answer their app’s name', () => {
  const placed = { nodeId: 'n1', desiredState: 'running' as const, draining: false }
  const status = (o: Partial<{ nodeId: string; state: string; ready: boolean | null }> = {}) => ({ nodeId: 'n1', state: 'running', ready: null, ...o })

  it('a running instance without a readiness check, or passing it, where it is placed', () => {
    expect(readyForNames(placed, status())).toBe(true)
    expect(readyForNames(placed, status({ ready: true }))).toBe(true)
  })

  it('not one failing its readiness check, not running, reported from another node, unreported, stopping or draining', () => {
    expect(readyForNames(placed, status({ ready: false }))).toBe(false)
    for (const state of ['pending', 'starting', 'exited', 'failed', 'unknown']) expect(readyForNames(placed, status({ state }))).toBe(false)
    // A move's source still reporting it: the new node has not run it yet.
    expect(readyForNames(placed, status({ nodeId: 'n2' }))).toBe(false)
    expect(readyForNames(placed, undefined)).toBe(false)
    expect(readyForNames({ ...placed, desiredState: 'stopped' }, status())).toBe(false)
    expect(readyForNames({ ...placed, draining: true }, status())).toBe(false)
    expect(readyForNames({ ...placed, nodeId: null }, status())).toBe(false)
  })

  it('endpoints carry it, and a change of it changes the fingerprint (the nodes get pushed)', () => {
    const leases = [inst('100.64.0.2', 'a', '198.18.0.1', 0, false), inst('100.64.0.3', 'b', '198.18.0.2', 1)]
    expect(networksOfNode('a', [net], leases)[0]!.endpoints.map((e) => [e.ip, e.ready])).toEqual([
      ['100.64.0.2', false],
      ['100.64.0.3', true],
    ])
    expect(fingerprintOf(leases)).not.toBe(fingerprintOf([inst('100.64.0.2', 'a', '198.18.0.1', 0, true), leases[1]!]))
  })
})
