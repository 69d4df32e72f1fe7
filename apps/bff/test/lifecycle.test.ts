import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createCluster, type TestCluster } from './cluster'
import { addMember, callerFor, OPERATOR, startTestBff, waitFor, type TestBff, readyNodes } from './harness'

// Two real agent processes against one BFF: drain, then lose a node and reschedule.
const LEASE_MS = 1500
const GRACE_MS = 1000
let bff: TestBff
let cluster: TestCluster
let joinToken: string
let tenantId: string
type Caller = Awaited<ReturnType<typeof callerFor>>
let op: Caller
let dev: Caller

const nodeByName = async (name: string) => (await op.nodes.list()).find((n) => n.name === name)

beforeAll(async () => {
  bff = await startTestBff({ ALVEARY_HEARTBEAT_MS: '300', ALVEARY_NODE_LEASE_MS: String(LEASE_MS), ALVEARY_EVICTION_GRACE_MS: String(GRACE_MS) })
  op = await callerFor(bff, OPERATOR.email, OPERATOR.password)
  joinToken = (await op.joinTokens.create({ description: 'lifecycle', ttlHours: 1, uses: 2 })).token
  tenantId = (await op.tenants.create({ slug: 'life', name: 'Life' })).id
  await addMember(bff, op, tenantId, { email: 'dev@life.test', name: 'Dev', password: 'dev-password', role: 'owner' })
  dev = await callerFor(bff, 'dev@life.test', 'dev-password')
  cluster = await createCluster({ server: () => bff.url, joinToken: () => joinToken, names: ['node-a', 'node-b'] })
  cluster.start('node-a')
  cluster.start('node-b')
  await readyNodes(op, 2)
})
afterAll(async () => {
  // Retires both nodes (node-a's killed agent left its instances running, by design) and checks the machine.
  await cluster?.stopAll()
  await bff?.stop()
  await bff?.dropDatabase()
})

const placement = async (appId: string) => {
  const d = await dev.apps.get({ tenantId, appId })
  return d.instances.filter((i) => i.desiredState === 'running').map((i) => ({ node: i.node?.name ?? null, state: i.state }))
}

describe('node lifecycle', () => {
  let appId: string

  it('drains a node: instances move off, at most maxUnavailable at a time', async () => {
    appId = (await dev.apps.create({ tenantId, name: 'web', replicas: 4, spec: { command: 'node', args: ['examples/hello/server.js'], cpuMillis: 100, memoryMb: 32, maxUnavailable: 1 } })).id
    await waitFor('4 running on 2 nodes', async () => {
      const p = await placement(appId)
      return p.filter((x) => x.state === 'running').length === 4 && new Set(p.map((x) => x.node)).size === 2
    }, 20_000).catch(async (e) => {
      console.error(JSON.stringify(await dev.apps.get({ tenantId, appId })), JSON.stringify(await op.nodes.list()))
      throw e
    })
    const b = (await nodeByName('node-b'))!
    await op.nodes.drain({ nodeId: b.id })
    let worst = 0
    await waitFor('all on node-a', async () => {
      const p = await placement(appId)
      worst = Math.max(worst, p.filter((x) => x.state !== 'running').length)
      return p.every((x) => x.node === 'node-a' && x.state === 'running')
    }, 30_000, 50)
    expect(worst).toBeLessThanOrEqual(1)
    await waitFor('drain finished', async () => (await nodeByName('node-b'))?.drain === null)
    expect((await nodeByName('node-b'))?.schedulable).toBe(false)
    await op.nodes.uncordon({ nodeId: b.id })
  })

  it('reschedules the instances of a killed agent within the grace period, and the agent stops its stale copies when it returns', async () => {
    const before = await dev.apps.get({ tenantId, appId })
    const pidsOnA = before.instances.filter((i) => i.node?.name === 'node-a').map((i) => i.url)
    const killedAt = Date.now()
    await cluster.kill('node-a', 'SIGKILL')
    await waitFor('node-a not ready', async () => (await nodeByName('node-a'))?.state === 'not_ready', 10_000)
    await waitFor('all running on node-b', async () => (await placement(appId)).every((x) => x.node === 'node-b' && x.state === 'running'), 20_000)
    const took = Date.now() - killedAt
    expect(took).toBeLessThan(LEASE_MS + GRACE_MS + 5_000)
    // node-a's processes are still there (its agent died, not the node): they answer until it returns.
    expect(pidsOnA.length).toBeGreaterThan(0)
    cluster.start('node-a')
    await waitFor('node-a ready again', async () => (await nodeByName('node-a'))?.state === 'ready', 15_000)
    await waitFor('stale copies stopped', async () => {
      const answers = await Promise.all(pidsOnA.map((u) => fetch(u!).then(() => true, () => false)))
      return answers.every((a) => !a)
    }, 15_000)
  })
})
