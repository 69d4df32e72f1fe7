import { execFileSync, type ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { TDesired, TDesiredInstance, TDesiredNetwork } from '@alveary/core/protocol'
import { createTools } from '../src/network/exec'
import { overlayNames } from '../src/network/names'
import { createOverlay, type Overlay } from '../src/network/overlay'
import { makeInstance, testLogger } from './helpers'
import { leftovers, makeUnderlay, overlayUnavailable, serveIn, tcpProbe, type Underlay } from './netns'

// The overlay driver alone on real namespaces, bridges and VXLAN: two simulated nodes, two
// tenants with the SAME CIDR. The agent-level test (overlay-agents.test.ts) adds the control plane.
const skip = overlayUnavailable()

interface Placed {
  inst: TDesiredInstance
  tenant: 'a' | 'b'
  node: number
}

const nets: Record<'a' | 'b', Omit<TDesiredNetwork, 'peers' | 'endpoints'>> = {
  a: { networkId: randomUUID(), vxlanId: 4096, cidr: '100.64.0.0/24', gateway: '100.64.0.1', gatewayMac: '02:a0:00:10:00:01' },
  b: { networkId: randomUUID(), vxlanId: 4097, cidr: '100.64.0.0/24', gateway: '100.64.0.1', gatewayMac: '02:a0:00:10:01:01' },
}
const mac = (ip: string) => `02:a1:${ip.split('.').map((o) => Number(o).toString(16).padStart(2, '0')).join(':')}`

function instance(tenant: 'a' | 'b', ip: string, hostPort: number): TDesiredInstance {
  return makeInstance({
    appName: `app-${tenant}`,
    spec: { ports: [{ name: 'http', containerPort: null, hostPort }] },
    interfaces: [{ networkId: nets[tenant].networkId, ip, mac: mac(ip), prefixLength: 24, gateway: '100.64.0.1' }],
  })
}

/** What the control plane would send each node (networks/topology.ts does this for real). */
function desiredFor(u: Underlay, placed: Placed[], node: number, generation: number): TDesired {
  const networks: TDesiredNetwork[] = []
  for (const t of ['a', 'b'] as const) {
    const mine = placed.filter((p) => p.tenant === t)
    if (!mine.some((p) => p.node === node)) continue
    const endpoints = mine.map((p) => ({ ip: p.inst.interfaces[0]!.ip, mac: p.inst.interfaces[0]!.mac, node: u.nodes[p.node]!.ip, app: p.inst.appName, ordinal: 0, ready: true }))
    networks.push({ ...nets[t], peers: [...new Set(endpoints.map((e) => e.node))].filter((n) => n !== u.nodes[node]!.ip), endpoints })
  }
  return { type: 'desired', generation, instances: placed.filter((p) => p.node === node).map((p) => p.inst), networks }
}

describe.skipIf(skip)('overlay driver on real namespaces', () => {
  let u: Underlay
  let overlays: Overlay[]
  const servers: ChildProcess[] = []
  let placed: Placed[]
  let gen = 1
  const applyAll = async () => {
    gen++
    overlays.forEach((o, k) => o.apply(desiredFor(u, placed, k, gen)))
    await Promise.all(overlays.map((o) => o.sync()))
  }
  const ns = (p: Placed) => `/run/netns/${overlayNames(u.nodes[p.node]!.prefix).instanceNs(p.inst.instanceId)}`

  beforeAll(async () => {
    u = makeUnderlay(2)
    overlays = u.nodes.map((n) => createOverlay({ names: overlayNames(n.prefix), vtep: n.ip, tools: createTools({ netns: n.ns }), log: testLogger, resyncMs: 3_600_000 }))
    placed = [
      { inst: instance('a', '100.64.0.2', 31001), tenant: 'a', node: 0 },
      { inst: instance('a', '100.64.0.3', 31002), tenant: 'a', node: 1 },
      { inst: instance('b', '100.64.0.2', 31003), tenant: 'b', node: 0 },
      { inst: instance('b', '100.64.0.3', 31004), tenant: 'b', node: 1 },
    ]
    await applyAll()
    for (const p of placed) {
      const prepared = await overlays[p.node]!.prepare(p.inst.instanceId)
      expect(prepared).toEqual({ netnsPath: ns(p), ip: p.inst.interfaces[0]!.ip, innerPorts: [8080] })
      servers.push(await serveIn(prepared.netnsPath, 8080, `tenant ${p.tenant} ${prepared.ip}`))
    }
  })
  afterAll(async () => {
    for (const s of servers) s.kill('SIGKILL')
    await Promise.all((overlays ?? []).map((o) => o.close()))
    u?.cleanup()
  })

  it('connects instances of one network across nodes; the same CIDR of another tenant is another network', async () => {
    const [a0, a1, b0, b1] = placed
    expect(await tcpProbe(ns(a0!), '100.64.0.3', 8080)).toBe('tenant a 100.64.0.3')
    expect(await tcpProbe(ns(a1!), '100.64.0.2', 8080)).toBe('tenant a 100.64.0.2')
    expect(await tcpProbe(ns(b0!), '100.64.0.3', 8080)).toBe('tenant b 100.64.0.3')
    expect(await tcpProbe(ns(b1!), '100.64.0.2', 8080)).toBe('tenant b 100.64.0.2')
  })

  it('publishes ports on the node, from other nodes and from 127.0.0.1 on the node itself', async () => {
    expect(await tcpProbe(u.nodes[1]!.ns, u.nodes[0]!.ip, 31001)).toBe('tenant a 100.64.0.2')
    expect(await tcpProbe(u.nodes[0]!.ns, '127.0.0.1', 31003)).toBe('tenant b 100.64.0.2')
    expect(await tcpProbe(u.nodes[1]!.ns, '127.0.0.1', 31004)).toBe('tenant b 100.64.0.3')
  })

  it('lets instances out (masqueraded) but not into the node or another network', async () => {
    const agentPort = await serveIn(u.nodes[0]!.ns, 4999, 'node service')
    const other = await serveIn(u.nodes[1]!.ns, 4998, 'other node')
    servers.push(agentPort, other)
    const a0 = placed[0]!
    // Egress to another machine works, seen from there as the node's address.
    expect(await tcpProbe(ns(a0), u.nodes[1]!.ip, 4998)).toBe('other node')
    // The node's own services: neither by its address nor by the transit address.
    expect(await tcpProbe(ns(a0), u.nodes[0]!.ip, 4999, 800)).toMatch(/^error/)
    expect(await tcpProbe(ns(a0), '169.254.0.1', 4999, 800)).toMatch(/^error/)
    // Another network's router on the same node.
    expect(await tcpProbe(ns(a0), '169.254.16.1', 31003, 800)).toMatch(/^error/)
    const counters = JSON.parse(execFileSync('ip', ['netns', 'exec', u.nodes[0]!.ns, 'nft', '-j', 'list', 'counters']).toString()) as {
      nftables: Array<{ counter?: { name: string; packets: number } }>
    }
    const count = (name: string) => counters.nftables.find((c) => c.counter?.name === name)?.counter?.packets ?? 0
    expect(count('to_node')).toBeGreaterThan(0)
    expect(count('cross_network')).toBeGreaterThan(0)
  })

  it('converges after a manual `ip link del` and keeps the instance address', async () => {
    const n0 = u.nodes[0]!
    const names = overlayNames(n0.prefix)
    execFileSync('ip', ['-n', n0.ns, 'link', 'del', names.transit(4096)])
    execFileSync('ip', ['-n', names.routerNs(4096), 'link', 'del', names.instanceVeth(placed[0]!.inst.instanceId)])
    expect(await tcpProbe(n0.ns, '127.0.0.1', 31001, 800)).toMatch(/^error/)
    await overlays[0]!.sync()
    expect(await tcpProbe(n0.ns, '127.0.0.1', 31001)).toBe('tenant a 100.64.0.2')
    expect(await tcpProbe(ns(placed[1]!), '100.64.0.2', 8080)).toBe('tenant a 100.64.0.2')
  })

  it('follows an instance that moves to another node, at the same address', async () => {
    // a1 leaves node 1 and comes back on node 0 with the same IP and MAC.
    servers.splice(1, 1)[0]!.kill('SIGKILL')
    const moved: Placed = { ...placed[1]!, node: 0 }
    placed[1] = moved
    await applyAll()
    const prepared = await overlays[0]!.prepare(moved.inst.instanceId)
    servers.push(await serveIn(prepared.netnsPath, 8080, 'tenant a moved'))
    expect(await tcpProbe(ns(placed[0]!), '100.64.0.3', 8080)).toBe('tenant a moved')
    // Node 1 no longer hosts tenant a: its router namespace is gone.
    expect(leftovers(u.nodes[1]!).filter((l) => l.includes(`-n4096`))).toEqual([])
  })

  it('stages an instance a move brings here: same address, unlinked while its source serves; the start only links it', async () => {
    // a1 runs on node 0 (moved there above); a move back to node 1 stages it there first.
    const moving = placed[1]!
    const id = moving.inst.instanceId
    const n1 = overlayNames(u.nodes[1]!.prefix)
    const endpoints = placed.filter((p) => p.tenant === 'a').map((p) => ({ ip: p.inst.interfaces[0]!.ip, mac: p.inst.interfaces[0]!.mac, node: u.nodes[p.node]!.ip, app: p.inst.appName, ordinal: 0, ready: true }))
    const staging = desiredFor(u, placed, 1, ++gen)
    staging.networks.push({ ...nets.a, peers: [u.nodes[0]!.ip], endpoints })
    staging.staged = [{ instanceId: id, driver: 'process', interfaces: moving.inst.interfaces }]
    overlays[1]!.apply(staging)
    expect(await overlays[1]!.whenStaged(id, 10_000)).toBe(true)
    const addrs = JSON.parse(execFileSync('ip', ['-n', n1.instanceNs(id), '-j', 'addr', 'show', 'eth0']).toString()) as Array<{ address: string; addr_info: Array<{ local: string }> }>
    expect(addrs[0]!.address).toBe(moving.inst.interfaces[0]!.mac)
    expect(addrs[0]!.addr_info.map((a) => a.local)).toContain('100.64.0.3')
    const [veth] = JSON.parse(execFileSync('ip', ['-n', n1.routerNs(4096), '-j', 'link', 'show', n1.instanceVeth(id)]).toString()) as Array<{ master?: string; flags: string[] }>
    expect(veth!.master).toBeUndefined()
    expect(veth!.flags).not.toContain('UP')
    // The address is still the source's.
    expect(await tcpProbe(ns(placed[0]!), '100.64.0.3', 8080)).toBe('tenant a moved')

    // The fence moves: node 1 links the staged interface (nothing else on the start's path), node 0 lets go.
    servers.splice(servers.length - 1, 1)[0]!.kill('SIGKILL')
    placed[1] = { ...moving, node: 1 }
    gen++
    overlays.forEach((o, k) => o.apply(desiredFor(u, placed, k, gen)))
    const prepared = await overlays[1]!.activate(moving.inst)
    expect(prepared).toEqual({ netnsPath: `/run/netns/${n1.instanceNs(id)}`, ip: '100.64.0.3', innerPorts: [8080] })
    servers.push(await serveIn(prepared!.netnsPath, 8080, 'tenant a back'))
    await Promise.all(overlays.map((o) => o.sync()))
    expect(await tcpProbe(ns(placed[0]!), '100.64.0.3', 8080)).toBe('tenant a back')
    // A start that was not staged gets nothing from the fast path.
    expect(await overlays[0]!.activate(placed[0]!.inst)).toBeNull()
  })

  it('removes everything it made once nothing is desired, and nothing else', async () => {
    placed = []
    await applyAll()
    for (const n of u.nodes) expect(leftovers(n)).toEqual([])
    const links = JSON.parse(execFileSync('ip', ['-n', u.nodes[0]!.ns, '-j', 'link', 'show']).toString()) as Array<{ ifname: string }>
    expect(links.map((l) => l.ifname).sort()).toEqual(['eth0', 'lo'])
  })
})
