import { execFileSync, type ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { TDesired, TDesiredInstance, TDesiredNetwork } from '@alveary/core/protocol'
import { createTools } from '../src/network/exec'
import { overlayNames } from '../src/network/names'
import { createOverlay, type Overlay } from '../src/network/overlay'
import { makeInstance, testLogger } from './helpers'
import { leftovers, makeUnderlay, overlayUnavailable, serveIn, tcpProbe, type Underlay } from './netns'

// A load-balancing node joining a tenant network (network/overlay/lb-join.ts) on real namespaces and
// VXLAN: node 0 runs no instance and has an address on tenant a's network; node 1 runs
// instances of tenant a and of tenant b, whose network has the SAME CIDR.
const skip = overlayUnavailable()

const nets = {
  a: { networkId: randomUUID(), vxlanId: 4310, cidr: '100.64.0.0/24', gateway: '100.64.0.1', gatewayMac: '02:a0:00:10:d6:01' },
  b: { networkId: randomUUID(), vxlanId: 4311, cidr: '100.64.0.0/24', gateway: '100.64.0.1', gatewayMac: '02:a0:00:10:d7:01' },
}
const mac = (ip: string) => `02:a1:${ip.split('.').map((o) => Number(o).toString(16).padStart(2, '0')).join(':')}`
const LB_IP = '100.64.0.9'
const inst = (t: 'a' | 'b', ip: string): TDesiredInstance =>
  makeInstance({ appName: `app-${t}`, spec: { ports: [{ name: 'http', containerPort: null, hostPort: 0 }] }, interfaces: [{ networkId: nets[t].networkId, ip, mac: mac(ip), prefixLength: 24, gateway: '100.64.0.1' }] })

describe.skipIf(skip)('a load-balancing node joins a tenant network', () => {
  let u: Underlay
  let overlays: Overlay[]
  const servers: ChildProcess[] = []
  const a3 = inst('a', '100.64.0.3')
  const b3 = inst('b', '100.64.0.3')
  const b4 = inst('b', '100.64.0.4')
  let gen = 1
  let joined = true
  const lbNs = () => overlayNames(u.nodes[0]!.prefix).lbNs(nets.a.vxlanId)

  function desired(node: number): TDesired {
    const [lbNode, appNode] = [u.nodes[0]!.ip, u.nodes[1]!.ip]
    const aEndpoints = [{ ip: a3.interfaces[0]!.ip, mac: a3.interfaces[0]!.mac, node: appNode, app: 'app-a', ordinal: 0, ready: true }, ...(joined ? [{ ip: LB_IP, mac: mac(LB_IP), node: lbNode, app: '', ordinal: 0, ready: true }] : [])]
    const a: TDesiredNetwork = { ...nets.a, peers: [...new Set(aEndpoints.map((e) => e.node))].filter((n) => n !== u.nodes[node]!.ip), endpoints: aEndpoints }
    const bEndpoints = [b3, b4].map((i) => ({ ip: i.interfaces[0]!.ip, mac: i.interfaces[0]!.mac, node: appNode, app: 'app-b', ordinal: 0, ready: true }))
    if (node === 0) return { type: 'desired', generation: gen, instances: [], networks: joined ? [{ ...a, lbAddress: LB_IP }] : [] }
    return { type: 'desired', generation: gen, instances: [a3, b3, b4], networks: [a, { ...nets.b, peers: [], endpoints: bEndpoints }] }
  }
  const applyAll = async () => {
    gen++
    overlays.forEach((o, k) => o.apply(desired(k)))
    await Promise.all(overlays.map((o) => o.sync()))
  }

  beforeAll(async () => {
    u = makeUnderlay(2)
    overlays = u.nodes.map((n) => createOverlay({ names: overlayNames(n.prefix), vtep: n.ip, tools: createTools({ netns: n.ns }), log: testLogger, resyncMs: 3_600_000 }))
    await applyAll()
    for (const [i, reply] of [[a3, 'tenant a'], [b3, 'tenant b'], [b4, 'tenant b']] as const) {
      const p = await overlays[1]!.prepare(i.instanceId)
      servers.push(await serveIn(p.netnsPath, 8080, `${reply} ${p.ip}`))
    }
  })
  afterAll(async () => {
    for (const s of servers) s.kill('SIGKILL')
    await Promise.all((overlays ?? []).map((o) => o.close()))
    u?.cleanup()
  })

  it('reaches the network’s instances on another node by IP from its namespace, and nothing of another tenant', async () => {
    const ns = await overlays[0]!.lbNamespaces()
    expect([...ns.keys()]).toEqual([nets.a.networkId])
    expect(ns.get(nets.a.networkId)!.name).toBe(lbNs())
    expect(await tcpProbe(lbNs(), '100.64.0.3', 8080)).toBe('tenant a 100.64.0.3')
    // Tenant b's address that tenant a does not have: nothing answers.
    expect(await tcpProbe(lbNs(), '100.64.0.4', 8080)).toMatch(/^error/)
    // The node itself has no route into the network; the namespace no default route.
    expect(execFileSync('ip', ['-n', u.nodes[0]!.ns, '-j', 'route', 'show', 'table', 'all']).toString()).not.toContain('100.64.0.')
    expect(execFileSync('ip', ['-n', lbNs(), 'route', 'show', 'default']).toString().trim()).toBe('')
  })

  it('is idempotent, and repairs its interface in the same namespace', async () => {
    const before = (await overlays[0]!.lbNamespaces()).get(nets.a.networkId)!
    const link = () => execFileSync('ip', ['-n', lbNs(), '-j', 'link', 'show', 'eth0']).toString()
    const eth0 = link()
    await applyAll()
    expect(link()).toBe(eth0)
    expect((await overlays[0]!.lbNamespaces()).get(nets.a.networkId)).toEqual(before)
    execFileSync('ip', ['-n', lbNs(), 'link', 'del', 'eth0'])
    await applyAll()
    // The namespace stays (HAProxy holds it open), only its interface is rebuilt.
    expect((await overlays[0]!.lbNamespaces()).get(nets.a.networkId)).toEqual(before)
    expect(await tcpProbe(lbNs(), '100.64.0.3', 8080)).toBe('tenant a 100.64.0.3')
  })

  it('leaves the network when it no longer has an address there', async () => {
    joined = false
    await applyAll()
    expect((await overlays[0]!.lbNamespaces()).size).toBe(0)
    expect(leftovers(u.nodes[0]!)).toEqual([])
  })
})
