import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createCluster, type TestCluster } from './cluster'
import { addMember, callerFor, OPERATOR, startTestBff, waitFor, type TestBff, readyNodes } from './harness'

// Node loss and self-fencing with real agent processes: an agent killed with SIGKILL leaves
// its instances running, and only its watchdogs stop the ones that must not run twice.
const SELF_FENCE_MS = 2500
let bff: TestBff
let cluster: TestCluster
let tenantId: string
type Caller = Awaited<ReturnType<typeof callerFor>>
let op: Caller
let dev: Caller

const instanceOf = async (appId: string) => (await dev.apps.get({ tenantId, appId })).instances.find((i) => i.desiredState === 'running')!
const answers = (url: string) => fetch(url, { signal: AbortSignal.timeout(1500) }).then((r) => r.json() as Promise<{ count: number; run: string }>)

async function deploy(name: string, spec: Record<string, unknown>) {
  const { id } = await dev.apps.create({ tenantId, name, replicas: 1, spec: { command: 'node', args: ['examples/counter/server.js'], cpuMillis: 100, memoryMb: 64, env: { COUNT_EVERY_MS: '10' }, ...spec } })
  const inst = await waitFor(`${name} running`, async () => {
    const i = await instanceOf(id)
    return i?.state === 'running' && i.url ? i : null
  }, 30_000)
  await waitFor(`${name} answering`, () => answers(inst.url!).catch(() => null))
  return { appId: id, inst }
}

/** history.log of a shared volume: "<run> <count>" per write. Two writers at once would interleave their runs. */
async function history(volumeId: string): Promise<{ run: string; count: number }[]> {
  const text = await readFile(path.join(cluster.sharedDir, tenantId, volumeId, 'data', 'history.log'), 'utf8')
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [run, count] = l.split(' ')
      return { run: run!, count: Number(count) }
    })
}
function assertOneWriterAtATime(h: { run: string; count: number }[]) {
  const runs: string[] = []
  for (const [k, e] of h.entries()) {
    if (runs.at(-1) !== e.run) {
      // A run that wrote before must never write again once another took over.
      expect(runs).not.toContain(e.run)
      runs.push(e.run)
    }
    // Strictly increasing: a second writer would repeat or go back. (A run killed between writing the
    // count and appending it here leaves a gap of one, which is not a second writer.)
    if (k > 0) expect(e.count).toBeGreaterThan(h[k - 1]!.count)
  }
  return runs
}

beforeAll(async () => {
  bff = await startTestBff({
    ALVEARY_HEARTBEAT_MS: '300',
    ALVEARY_NODE_LEASE_MS: '1500',
    ALVEARY_EVICTION_GRACE_MS: '500',
    ALVEARY_SELF_FENCE_MS: String(SELF_FENCE_MS),
    ALVEARY_FENCE_MARGIN_MS: '1000',
  })
  op = await callerFor(bff, OPERATOR.email, OPERATOR.password)
  const joinToken = (await op.joinTokens.create({ description: 'fencing', ttlHours: 1, uses: 5 })).token
  tenantId = (await op.tenants.create({ slug: 'fencing', name: 'Fencing' })).id
  await addMember(bff, op, tenantId, { email: 'dev@fencing.test', name: 'Dev', password: 'dev-password', role: 'owner' })
  dev = await callerFor(bff, 'dev@fencing.test', 'dev-password')
  cluster = await createCluster({ server: () => bff.url, joinToken: () => joinToken, names: ['node-a', 'node-b'] })
  cluster.start('node-a')
  cluster.start('node-b')
  await readyNodes(op, 2)
})
afterAll(async () => {
  await cluster?.stopAll()
  await bff?.stop()
  await bff?.dropDatabase()
})

describe('node loss and fencing', { timeout: 120_000 }, () => {
  let shared: { appId: string; volumeId: string; lost: string; survivor: string }

  it('a lost node with a shared volume: its watchdog stops the copy, then the volume moves; one writer at a time, no data lost', async () => {
    const { appId, inst } = await deploy('shared-db', { volumes: [{ name: 'data', driver: 'shared', sizeMb: 16, mountPath: '/data' }] })
    const lost = inst.node!.name
    const survivor = lost === 'node-a' ? 'node-b' : 'node-a'
    const seen = (await answers(inst.url!)).count
    await cluster.kill(lost)
    // The agent is gone; its instance is not (yet): it answers until its watchdog kills it.
    expect((await answers(inst.url!)).count).toBeGreaterThanOrEqual(seen)
    const killedAt = Date.now()
    await waitFor('the old copy stopped by its watchdog', () => answers(inst.url!).then(() => false, () => true), 15_000, 100)
    expect(Date.now() - killedAt).toBeLessThan(SELF_FENCE_MS + 3000)
    const moved = await waitFor('running on the survivor', async () => {
      const i = await instanceOf(appId)
      return i.node?.name === survivor && i.state === 'running' ? i : null
    }, 60_000)
    expect(moved.id).toBe(inst.id)
    const after = await waitFor('answering on the survivor', () => answers(moved.url!).catch(() => null))
    expect(after.count).toBeGreaterThanOrEqual(seen)
    const move = await waitFor('the move finished', async () => {
      const m = (await op.moves.list({ limit: 10 })).find((x) => x.instance.id === inst.id)
      return m && m.state !== 'running' && m.state !== 'compensating' ? m : null
    })
    expect(move.reason).toBe('node_lost')
    expect(move.state).toBe('succeeded')
    expect(move.steps.find((s) => s.name === 'stop-source')!.detail).toMatch(/watchdog/)
    const volumeId = moved.volumes[0]!.id
    const runs = assertOneWriterAtATime(await history(volumeId))
    expect(runs.at(-1)).toBe(after.run)
    shared = { appId, volumeId, lost, survivor }
  })

  it('the old node returns: it does not start a second writer', async () => {
    const before = await history(shared.volumeId)
    cluster.start(shared.lost)
    await waitFor('the old node ready again', async () => (await op.nodes.list()).find((n) => n.name === shared.lost)?.state === 'ready', 30_000)
    // Let it settle: desired state applied, status reported.
    await new Promise((r) => setTimeout(r, 3000))
    const i = await instanceOf(shared.appId)
    expect(i.node?.name).toBe(shared.survivor)
    expect(i.state).toBe('running')
    const now = await history(shared.volumeId)
    expect(now.length).toBeGreaterThan(before.length)
    const runs = assertOneWriterAtATime(now)
    // No new run appeared: the survivor's run still writes, alone.
    expect(runs).toEqual(assertOneWriterAtATime(before))
  })

  it('a lost node with a local volume: the instance waits for it and says why, then runs there again', async () => {
    const { appId, inst } = await deploy('local-db', { volumes: [{ name: 'data', driver: 'local', sizeMb: 16, mountPath: '/data' }] })
    const lost = inst.node!.name
    const seen = (await answers(inst.url!)).count
    await cluster.kill(lost)
    const waiting = await waitFor('the reason it waits', async () => {
      const i = await instanceOf(appId)
      return i.pendingReason?.includes('local volume') ? i : null
    }, 30_000)
    expect(waiting.pendingReason).toMatch(new RegExp(`waiting for ${lost} to return`))
    expect(waiting.node?.name).toBe(lost)
    cluster.start(lost)
    const back = await waitFor('running again on its node', async () => {
      const i = await instanceOf(appId)
      return i.node?.name === lost && i.state === 'running' && !i.pendingReason ? i : null
    }, 60_000)
    expect((await waitFor('answering', () => answers(back.url!).catch(() => null))).count).toBeGreaterThanOrEqual(seen)
  })

  it('the source agent killed (SIGKILL) mid-move: its watchdog stops the copy, the move completes; one writer at a time, and the returning agent starts no second copy', async () => {
    await readyNodes(op, 2, 60_000)
    const { appId, inst } = await deploy('moving-db', { volumes: [{ name: 'data', driver: 'shared', sizeMb: 16, mountPath: '/data' }] })
    const source = inst.node!.name
    const target = source === 'node-a' ? 'node-b' : 'node-a'
    const seen = (await answers(inst.url!)).count
    const move = await op.moves.start({ instanceId: inst.id, targetNodeId: (await op.nodes.list()).find((n) => n.name === target)!.id })
    // Mid-move: capacity is held and the target is being prepared while the source still serves.
    await waitFor('the move past reserving', async () => (await op.moves.get({ moveId: move.id })).step !== 'reserve', 30_000, 20)
    await cluster.kill(source)
    const killedAt = Date.now()
    // The agent is gone, its instance is not: only its watchdog may stop it, and nothing starts elsewhere before that.
    await waitFor('the old copy stopped by its watchdog', () => answers(inst.url!).then(() => false, () => true), 15_000, 100)
    expect(Date.now() - killedAt).toBeLessThan(SELF_FENCE_MS + 3000)
    const done = await waitFor('the move finished', async () => {
      const m = await op.moves.get({ moveId: move.id })
      return m.state === 'succeeded' || m.state === 'failed' ? m : null
    }, 60_000)
    expect(done.error).toBeNull()
    expect(done.state).toBe('succeeded')
    expect(done.steps.find((s) => s.name === 'stop-source')!.detail).toMatch(/watchdog/)
    const moved = await waitFor('running on the target', async () => {
      const i = await instanceOf(appId)
      return i.node?.name === target && i.state === 'running' ? i : null
    }, 30_000)
    expect(moved.id).toBe(inst.id)
    const after = await waitFor('answering on the target', () => answers(moved.url!).catch(() => null))
    expect(after.count).toBeGreaterThanOrEqual(seen)
    // The source's agent returns: it finds its copy fenced and starts nothing.
    cluster.start(source)
    await waitFor('the source ready again', async () => (await op.nodes.list()).find((n) => n.name === source)?.state === 'ready', 30_000)
    await waitFor('the source applied its desired state', async () => {
      const n = (await op.nodes.list()).find((x) => x.name === source)!
      return n.appliedGeneration >= n.desiredGeneration
    }, 30_000)
    const settled = await instanceOf(appId)
    expect(settled.node?.name).toBe(target)
    expect(settled.state).toBe('running')
    // Writes go on from the target's run alone: the history shows one writer at a time, and no run after the target's.
    const written = (await history(moved.volumes[0]!.id)).length
    await waitFor('the target still writing', async () => (await history(moved.volumes[0]!.id)).length > written + 50)
    const runs = assertOneWriterAtATime(await history(moved.volumes[0]!.id))
    expect(runs.at(-1)).toBe(after.run)
    await expect(answers(inst.url!)).rejects.toThrow()
  })

  it('stateless apps that opt in stop when their node loses the control plane; the others keep running', async () => {
    // Both on node-a: node-b cordoned while they are placed.
    const nodeB = (await op.nodes.list()).find((n) => n.name === 'node-b')!
    await op.nodes.cordon({ nodeId: nodeB.id })
    const optIn = await deploy('stop-after-disconnect', { stopAfterDisconnect: true, env: { COUNT_EVERY_MS: '50', DATA_DIR: path.join(cluster.dir, 'opt-in') } })
    const plain = await deploy('keeps-running', { env: { COUNT_EVERY_MS: '50', DATA_DIR: path.join(cluster.dir, 'plain') } })
    await op.nodes.uncordon({ nodeId: nodeB.id })
    expect(optIn.inst.node!.name).toBe('node-a')
    expect(plain.inst.node!.name).toBe('node-a')
    await cluster.kill('node-a')
    const killedAt = Date.now()
    await waitFor('the opted-in instance stopped by its node', () => answers(optIn.inst.url!).then(() => false, () => true), 15_000, 100)
    expect(Date.now() - killedAt).toBeLessThan(SELF_FENCE_MS + 3000)
    // The other one is not fenced: it still answers well after the lease lapsed.
    await new Promise((r) => setTimeout(r, 1000))
    expect((await answers(plain.inst.url!)).count).toBeGreaterThan(0)
    cluster.start('node-a')
    await waitFor('the node back', async () => (await op.nodes.list()).filter((n) => n.state === 'ready').length === 2, 30_000)
  })
})
