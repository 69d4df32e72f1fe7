import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { overlayUnavailable, runIn } from '../../../packages/agents/test/netns'
import { addMember, callerFor, OPERATOR, startTestBff, waitFor, type TestBff, readyNodes } from './harness'
import { createSimCluster, type SimCluster } from './sim-cluster'

// Moves on a tenant network: two simulated nodes (network namespaces, real agent CLIs, overlay
// networking). A stateful instance moved by the saga keeps its identity, its data and its IP:
// a peer of the tenant reaches it at the same address on the other node.
const skip = overlayUnavailable()

describe.skipIf(skip)('moves on a tenant network', () => {
  let bff: TestBff
  let sim: SimCluster
  let joinToken = ''
  type Caller = Awaited<ReturnType<typeof callerFor>>
  let op: Caller
  let dev: Caller
  let tenantId: string

  beforeAll(async () => {
    // Heartbeats and lease long enough that agents stalled on a busy machine are not taken for lost.
    bff = await startTestBff({ ALVEARY_HEARTBEAT_MS: '2000', ALVEARY_NODE_LEASE_MS: '10000', ALVEARY_SELF_FENCE_MS: '30000' })
    sim = await createSimCluster({ count: 2, bffPort: () => Number(new URL(bff.url).port), joinToken: () => joinToken })
    op = await callerFor(bff, OPERATOR.email, OPERATOR.password)
    joinToken = (await op.joinTokens.create({ description: 'overlay moves', ttlHours: 1, uses: 4 })).token
    for (const n of sim.nodes) sim.start(n)
    await readyNodes(op, 2)
    tenantId = (await op.tenants.create({ slug: 'overlay-moves', name: 'Overlay moves' })).id
    await addMember(bff, op, tenantId, { email: 'dev@overlay-moves.test', name: 'Dev', password: 'dev-password', role: 'owner' })
    dev = await callerFor(bff, 'dev@overlay-moves.test', 'dev-password')
    await dev.networks.create({ tenantId, name: 'data', cidr: '100.64.211.0/24' })
  }, 120_000)
  afterAll(async () => {
    await sim?.cleanup()
    await bff?.stop()
    await bff?.dropDatabase()
  }, 60_000)

  it('a moved instance keeps its IP and its data; a peer reaches it at the same address', async () => {
    const running = async (appId: string) => {
      const i = (await dev.apps.get({ tenantId, appId })).instances.find((x) => x.desiredState === 'running')
      return i?.state === 'running' && i.node && i.ip ? i : null
    }
    const peerApp = (await dev.apps.create({ tenantId, name: 'peer', replicas: 1, network: 'data', spec: { command: 'node', args: ['-e', 'setInterval(()=>{},1<<30)'], cpuMillis: 50, memoryMb: 32 } })).id
    const appId = (
      await dev.apps.create({
        tenantId,
        name: 'counter',
        replicas: 1,
        network: 'data',
        spec: { command: 'node', args: ['examples/counter/server.js'], cpuMillis: 100, memoryMb: 64, ports: [{ name: 'http', containerPort: 8080 }], volumes: [{ name: 'data', driver: 'local', sizeMb: 16, mountPath: '/data' }] },
      })
    ).id
    const peer = await waitFor('the peer running', () => running(peerApp), 60_000)
    const before = await waitFor('the counter running', () => running(appId), 60_000)
    const peerNs = sim.instanceNs(sim.byName(peer.node!.name), peer.id)
    const get = (ip: string) =>
      runIn(peerNs, `require('http').get({host:${JSON.stringify(ip)},port:8080,path:'/',timeout:1500},(r)=>{let b='';r.on('data',(d)=>(b+=d));r.on('end',()=>console.log(b))}).on('error',(e)=>{console.log('{}');})`, 10_000).then(
        (out) => JSON.parse(out || '{}') as { count?: number; instance?: string },
      )
    const seen = await waitFor('the peer reaches the counter', async () => {
      const r = await get(before.ip!)
      return (r.count ?? 0) > 3 ? r : null
    }, 30_000)
    expect(seen.instance).toBe(before.id)

    const target = (await op.nodes.list()).find((n) => n.name !== before.node!.name)!
    const move = await op.moves.start({ instanceId: before.id, targetNodeId: target.id })
    const done = await waitFor('the move to finish', async () => {
      const m = await op.moves.get({ moveId: move.id })
      return m.state === 'succeeded' || m.state === 'failed' ? m : null
    }, 120_000, 100)
    expect(done.error).toBeNull()
    expect(done.state).toBe('succeeded')
    expect(done.bytesCopied).toBeGreaterThan(0)
    const after = await waitFor('running on the target', async () => {
      const i = await running(appId)
      return i && i.node!.name === target.name ? i : null
    }, 30_000)
    expect(after.id).toBe(before.id)
    expect(after.ip).toBe(before.ip)
    // The same address answers from the other node, with the count where it was (or further).
    const reached = await waitFor('the peer reaches it at the same address', async () => {
      const r = await get(before.ip!)
      return r.instance === before.id && r.count !== undefined ? r : null
    }, 30_000)
    expect(reached.count!).toBeGreaterThanOrEqual(seen.count!)
  }, 240_000)
})
