import { randomUUID } from 'node:crypto'
import { PROTOCOL_VERSION, type TDesired } from '@alveary/core/protocol'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { callerFor, OPERATOR, startTestBff, tenantWithOwner, waitFor, type TestBff } from './harness'

// Tenant networks in the control plane: default networks, quotas, IPAM over the lease table,
// placement on overlay nodes only, and the network part of nodes' desired state. Nodes here
// are registered through core (hello + heartbeats) without an agent: the overlay itself is
// tested in packages/agents/test/overlay*.test.ts.
type Caller = Awaited<ReturnType<typeof callerFor>>
let bff: TestBff
let op: Caller
let alice: Caller
let bob: Caller
let tA: string
let tB: string
let joinToken: string
const spec = { driver: 'process' as const, command: 'node', args: ['-e', '0'], cpuMillis: 10, memoryMb: 8 }

async function registerNode(name: string, address: string, network: 'host' | 'overlay') {
  const sessionId = randomUUID()
  const hello = await bff.core.agents.hello(
    {
      type: 'hello',
      protocolVersion: PROTOCOL_VERSION,
      auth: { joinToken },
      node: { name, address, labels: {}, cpuMillis: 4000, memoryMb: 4096, drivers: ['process'], agentVersion: 'test', capabilities: { lb: null, network } },
    },
    sessionId,
    '127.0.0.1',
  )
  if (!hello.ok) throw new Error(`node ${name} refused`)
  const { nodeId } = hello
  await bff.core.agents.heartbeat(nodeId, sessionId, { cpuUsedMillis: 0, memoryUsedMb: 0, appliedGeneration: 0 })
  fakeNodes.push(nodeId)
  return nodeId
}

/** Plays the agents: every node reports what its desired state asks for as done. */
const fakeNodes: string[] = []
let playing: NodeJS.Timeout | null = null
let inflight: Promise<void> = Promise.resolve()
async function play() {
  for (const nodeId of fakeNodes) {
    const d = await bff.core.agents.desiredFor(nodeId)
    const now = new Date().toISOString()
    await bff.core.agents.report(
      nodeId,
      true,
      d.instances.map((i) => ({ instanceId: i.instanceId, state: i.desiredState, pid: null, restarts: 0, startedAt: now, exitCode: null, message: null, generation: i.generation })),
    )
  }
}

beforeAll(async () => {
  bff = await startTestBff({ ALVEARY_NETWORK_POOL: '100.64.0.0/22', ALVEARY_NETWORK_PREFIX_LENGTH: '24', ALVEARY_NODE_LEASE_MS: '600000', ALVEARY_STOPPED_RETENTION_MS: '0' })
  op = await callerFor(bff, OPERATOR.email, OPERATOR.password)
  joinToken = (await op.joinTokens.create({ description: 'net', ttlHours: 1, uses: 10 })).token
  ;({ tenantId: tA, caller: alice } = await tenantWithOwner(bff, op, { slug: 'acme', name: 'Acme', quotas: { networks: 2 } }, { email: 'alice@acme.test', name: 'Alice', password: 'alice-password' }))
  ;({ tenantId: tB, caller: bob } = await tenantWithOwner(bff, op, { slug: 'globex', name: 'Globex' }, { email: 'bob@globex.test', name: 'Bob', password: 'bob-password' }))
  playing = setInterval(() => (inflight = inflight.then(play).catch(() => {})), 200)
})
afterAll(async () => {
  if (playing) clearInterval(playing)
  await inflight
  await bff?.stop()
  await bff?.dropDatabase()
})

describe('networks', () => {
  it('gives every tenant a default network from the pool, in distinct blocks', async () => {
    const [a] = await alice.networks.list({ tenantId: tA })
    const [b] = await bob.networks.list({ tenantId: tB })
    expect(a).toMatchObject({ name: 'default', isDefault: true, cidr: '100.64.0.0/24', gateway: '100.64.0.1', used: 0, free: 253 })
    expect(b).toMatchObject({ name: 'default', isDefault: true, cidr: '100.64.1.0/24' })
    expect(a!.vxlanId).not.toBe(b!.vxlanId)
  })

  it('creates networks within the quota; CIDRs may overlap across tenants, not within one', async () => {
    const same = await bob.networks.create({ tenantId: tB, name: 'shared', cidr: '100.64.0.0/24' })
    expect(same.cidr).toBe('100.64.0.0/24')
    await expect(alice.networks.create({ tenantId: tA, name: 'clash', cidr: '100.64.0.128/25' })).rejects.toThrow(/overlaps network "default"/)
    await expect(alice.networks.create({ tenantId: tA, name: 'public', cidr: '8.8.8.0/24' })).rejects.toThrow(/must lie in/)
    const back = await alice.networks.create({ tenantId: tA, name: 'back', cidr: '100.64.8.0/29' })
    expect(back).toMatchObject({ free: 5, gateway: '100.64.8.1' })
    await expect(alice.networks.create({ tenantId: tA, name: 'third' })).rejects.toThrow(/Quota exceeded \(networks: 2 of 2/)
    await expect(alice.networks.delete({ tenantId: tA, networkId: (await alice.networks.list({ tenantId: tA }))[0]!.id })).rejects.toThrow(/default network cannot be deleted/)
  })

  it('puts apps on host networking while no node runs the overlay', async () => {
    const app = await alice.apps.create({ tenantId: tA, name: 'plain', replicas: 1, spec })
    expect(app.network).toBeNull()
    await alice.apps.delete({ tenantId: tA, appId: app.id })
  })

  it('places network apps on overlay nodes only, with a reason, and leases each instance an address', async () => {
    const hostNode = await registerNode('host-1', '198.18.0.10', 'host')
    const app = await alice.apps.create({ tenantId: tA, name: 'web', replicas: 2, spec, network: 'default' })
    expect(app.network?.name).toBe('default')
    const pending = await waitFor('explained', async () => {
      const d = await alice.apps.get({ tenantId: tA, appId: app.id })
      return d.instances.length === 2 && d.instances.every((i) => i.pendingReason) && d
    })
    expect(pending.instances[0]!.pendingReason).toMatch(/no overlay network/)
    expect(pending.instances.map((i) => i.ip).sort()).toEqual(['100.64.0.2', '100.64.0.3'])

    const n1 = await registerNode('ovl-1', '198.18.0.1', 'overlay')
    const n2 = await registerNode('ovl-2', '198.18.0.2', 'overlay')
    const placed = await waitFor('placed', async () => {
      const d = await alice.apps.get({ tenantId: tA, appId: app.id })
      return d.instances.every((i) => i.node) && d
    })
    expect(placed.instances.every((i) => i.node!.id !== hostNode)).toBe(true)

    const desired = (nodeId: string) => bff.core.agents.desiredFor(nodeId)
    const byIp = new Map(placed.instances.map((i) => [i.ip, i]))
    for (const nodeId of [n1, n2]) {
      const d: TDesired = await desired(nodeId)
      if (!d.instances.length) continue
      expect(d.networks).toHaveLength(1)
      const net = d.networks[0]!
      expect(net).toMatchObject({ cidr: '100.64.0.0/24', gateway: '100.64.0.1' })
      expect(net.endpoints.map((e) => e.ip).sort()).toEqual(['100.64.0.2', '100.64.0.3'])
      for (const i of d.instances) {
        expect(i.interfaces).toHaveLength(1)
        expect(i.interfaces[0]).toMatchObject({ prefixLength: 24, gateway: '100.64.0.1', mac: `02:a1:64:40:00:0${i.interfaces[0]!.ip.slice(-1)}` })
        expect(byIp.get(i.interfaces[0]!.ip)?.id).toBe(i.instanceId)
      }
    }
    const detail = await alice.networks.get({ tenantId: tA, networkId: app.network!.id })
    expect(detail.used).toBe(2)
    expect(detail.leases.map((l) => [l.ip, l.app.name])).toEqual([
      ['100.64.0.2', 'web'],
      ['100.64.0.3', 'web'],
    ])
    expect(detail.nodes.length).toBeGreaterThanOrEqual(1)
  })

  it('keeps an instance’s address when it is rescheduled, and tells the other nodes where it went', async () => {
    const app = (await alice.apps.list({ tenantId: tA })).find((a) => a.name === 'web')!
    const before = await alice.apps.get({ tenantId: tA, appId: app.id })
    const nodes = (await op.nodes.list()).filter((n) => n.name.startsWith('ovl-'))
    const from = before.instances[0]!.node!.id
    const to = nodes.find((n) => n.id !== from)!.id
    await op.nodes.drain({ nodeId: from })
    const after = await waitFor('moved', async () => {
      const d = await alice.apps.get({ tenantId: tA, appId: app.id })
      return d.instances.every((i) => i.node?.id === to) && d
    })
    expect(after.instances.map((i) => [i.id, i.ip]).sort()).toEqual(before.instances.map((i) => [i.id, i.ip]).sort())
    const d = await bff.core.agents.desiredFor(to)
    expect(d.networks[0]!.endpoints.every((e) => e.node === '198.18.0.' + (nodes.find((n) => n.id === to)!.name === 'ovl-1' ? '1' : '2'))).toBe(true)
    expect((await bff.core.agents.desiredFor(from)).networks).toEqual([])
    await op.nodes.uncordon({ nodeId: from })
  })

  it('releases addresses on scale-down only, refuses more instances than free addresses, and a network in use cannot be deleted', async () => {
    const back = (await alice.networks.list({ tenantId: tA })).find((n) => n.name === 'back')!
    await expect(alice.apps.create({ tenantId: tA, name: 'big', replicas: 6, spec, network: 'back' })).rejects.toThrow(/has 5 free addresses, 6 asked/)
    const small = await alice.apps.create({ tenantId: tA, name: 'small', replicas: 3, spec, network: 'back' })
    await waitFor('3 leases', async () => (await alice.networks.get({ tenantId: tA, networkId: back.id })).used === 3)
    await expect(alice.networks.delete({ tenantId: tA, networkId: back.id })).rejects.toThrow(/used by 1 app/)
    await alice.apps.scale({ tenantId: tA, appId: small.id, replicas: 1 })
    // The nodes report the two extra instances stopped; then their rows and leases go.
    const left = await waitFor('leases released', async () => {
      const n = await alice.networks.get({ tenantId: tA, networkId: back.id })
      return n.used === 1 && n
    })
    expect(left.leases.map((l) => l.ip)).toEqual(['100.64.8.2'])
    await expect(alice.apps.create({ tenantId: tA, name: 'other', replicas: 1, spec, network: 'nope' })).rejects.toThrow(/No network named "nope"/)
  })
})
