import { describe, expect, it } from 'vitest'
import type { TDesiredNetwork } from '@alveary/core/protocol'
import { innerPorts } from '@alveary/core/protocol'
import { overlayNames, transitIp } from '../src/network/names'
import { desiredFdb, diffFdb, diffNeigh, desiredNeigh, garbage, renderNodeTable, renderRouterTable, resolvConf } from '../src/network/overlay/plan'

const net: TDesiredNetwork = {
  networkId: '00000000-0000-4000-8000-000000000001',
  vxlanId: 4096,
  cidr: '100.64.0.0/24',
  gateway: '100.64.0.1',
  gatewayMac: '02:a0:00:10:00:01',
  peers: ['198.18.0.2', '198.18.0.3'],
  endpoints: [
    { ip: '100.64.0.2', mac: '02:a1:64:40:00:02', node: '198.18.0.1', app: 'web', ordinal: 0, ready: true },
    { ip: '100.64.0.3', mac: '02:a1:64:40:00:03', node: '198.18.0.2', app: 'web', ordinal: 1, ready: true },
    { ip: '100.64.0.4', mac: '02:a1:64:40:00:04', node: '198.18.0.3', app: 'db', ordinal: 0, ready: true },
  ],
}
const names = overlayNames('t1')

describe('overlay plan', () => {
  it('names everything with the prefix, within the 15-character link limit, and recognises only its own', () => {
    const n = overlayNames('abcd')
    for (const l of [n.transit(0xa8ff), n.vxlanTmp(0xa8ff), n.instanceVeth('0123456789abcdef-0000-4000-8000-000000000000')]) expect(l.length).toBeLessThanOrEqual(15)
    expect(names.parseNs('t1-n4096')).toEqual({ kind: 'router', vxlanId: 4096 })
    expect(names.parseNs('t1-l4096')).toEqual({ kind: 'lb', vxlanId: 4096 })
    expect(names.parseNs(`t1-i-${net.networkId}`)).toEqual({ kind: 'instance', instanceId: net.networkId })
    for (const other of ['t2-n4096', 'cni-1234', 't1-n', 't1-i-x']) expect(names.parseNs(other)).toBeNull()
    expect(() => overlayNames('Bad!')).toThrow()
    expect(transitIp(4096)).toBe('169.254.16.0')
    expect(transitIp(0xa8ff)).toBe('169.254.168.255')
  })

  it('gives instances stable inner ports: containerPort, else 8080 upward around the taken ones', () => {
    expect(innerPorts([{ containerPort: null }, { containerPort: 8080 }, { containerPort: null }])).toEqual([8081, 8080, 8082])
    expect(innerPorts([{ containerPort: 3000 }])).toEqual([3000])
    expect(innerPorts([])).toEqual([])
  })

  it('floods to every peer and sends remote MACs straight to their node; the diff of its own result is empty', () => {
    const want = desiredFdb(net, '198.18.0.1')
    expect(want).toEqual([
      { mac: '00:00:00:00:00:00', dst: '198.18.0.2' },
      { mac: '00:00:00:00:00:00', dst: '198.18.0.3' },
      { mac: '02:a1:64:40:00:03', dst: '198.18.0.2' },
      { mac: '02:a1:64:40:00:04', dst: '198.18.0.3' },
    ])
    expect(diffFdb(want, want)).toEqual({ add: [], del: [] })
    // The instance on .3 moved to .2: its entry is re-pointed, nothing else changes.
    const moved = desiredFdb({ ...net, endpoints: net.endpoints.map((e) => (e.ip === '100.64.0.4' ? { ...e, node: '198.18.0.2' } : e)) }, '198.18.0.1')
    expect(diffFdb(moved, want)).toEqual({ add: [{ mac: '02:a1:64:40:00:04', dst: '198.18.0.2' }], del: [{ mac: '02:a1:64:40:00:04', dst: '198.18.0.3' }] })
  })

  it('keeps static neighbours for every endpoint', () => {
    const want = desiredNeigh(net)
    expect(diffNeigh(want, want)).toEqual({ set: [], del: [] })
    expect(diffNeigh(want.slice(0, 1), [...want, { ip: '100.64.0.9', mac: '02:a1:64:40:00:09' }])).toEqual({ set: [], del: want.slice(1).concat({ ip: '100.64.0.9', mac: '02:a1:64:40:00:09' }) })
  })

  it('renders rule sets with the published ports and the isolation rules', () => {
    const fw = [{ vxlanId: 4096, hostPort: 20001, ip: '100.64.0.2', port: 8080 }]
    const node = renderNodeTable(names, fw)
    expect(node).toContain('table inet alveary_t1')
    expect(node).toContain('dnat ip to tcp dport map { 20001 : 169.254.16.0 }')
    expect(node).toMatch(/iifname "t1t\*" counter name to_node drop/)
    expect(renderNodeTable(names, [])).not.toContain('dnat ip to')
    expect(renderRouterTable(fw)).toContain('iifname "up0" tcp dport 20001 dnat ip to 100.64.0.2:8080')
    // Without a responder no DNS hook; with one, queries to the gateway reach it and nothing else of the node.
    expect(renderRouterTable(fw)).not.toContain('dport 53 ')
    expect(node).not.toContain('udp dport')
    const withDns = renderNodeTable(names, fw, 40053)
    // UDP and TCP (answers too large for UDP, RFC 7766).
    for (const p of ['udp', 'tcp']) {
      expect(renderRouterTable(fw, { gateway: '100.64.0.1', port: 40053 })).toContain(`iifname "br0" ip daddr 100.64.0.1 ${p} dport 53 dnat ip to 169.254.0.1:40053`)
      expect(withDns.indexOf(`ip daddr 169.254.0.1 ${p} dport 40053 accept`)).toBeGreaterThan(0)
      expect(withDns.indexOf(`ip daddr 169.254.0.1 ${p} dport 40053 accept`)).toBeLessThan(withDns.indexOf('counter name to_node drop'))
    }
    expect(resolvConf('100.64.0.1')).toMatch(/^nameserver 100\.64\.0\.1$/m)
  })

  it('collects only its own namespaces and links that nothing needs', () => {
    const junk = garbage(
      names,
      { routers: new Set([4096]), instances: new Set(['00000000-0000-4000-8000-00000000000a']), lbs: new Set([4096]) },
      {
        netns: ['t1-n4096', 't1-n4097', 't1-i-00000000-0000-4000-8000-00000000000a', 't1-i-00000000-0000-4000-8000-00000000000b', 'other', 't2-n4097', 't1-l4096', 't1-l4097', 't2-l4098'],
        nodeLinks: ['eth0', 't1t4096', 't1t4097', 't1x4096', 'docker0', 't2t4097'],
        etc: ['t1-i-00000000-0000-4000-8000-00000000000a', 't1-i-00000000-0000-4000-8000-00000000000b', 't2-i-00000000-0000-4000-8000-00000000000b', 'mine'],
      },
    )
    expect(junk).toEqual({
      netns: ['t1-n4097', 't1-i-00000000-0000-4000-8000-00000000000b', 't1-l4097'],
      links: ['t1t4097', 't1x4096'],
      etc: ['t1-i-00000000-0000-4000-8000-00000000000b'],
    })
  })
})
