import { afterAll, beforeAll, expect, it } from 'vitest'
import { createCluster, type TestCluster } from './cluster'
import { callerFor, OPERATOR, readyNodes, tenantWithOwner, waitFor } from './harness'
import { startLeaderAndReader } from './leader-process'

// A move survives the death of the BFF that drives it: the leader (a real process) is killed
// with SIGKILL in the middle of a move, twice (while the source stops, and after the fence
// moved); a new BFF on the same database resumes the move from its persisted steps and it
// completes with the data and the instance's identity kept.
const SETTINGS = {
  ALVEARY_PASSWORD_HASH_COST: '14',
  // Long enough that agents stalled on a busy machine are not taken for lost (a move would fail instead of resuming).
  ALVEARY_HEARTBEAT_MS: '1000',
  ALVEARY_NODE_LEASE_MS: '6000',
  ALVEARY_EVICTION_GRACE_MS: '10000',
  ALVEARY_NODE_STARTUP_GRACE_MS: '10000',
  ALVEARY_SELF_FENCE_MS: '30000',
  ALVEARY_FENCE_MARGIN_MS: '1000',
}
let system: Awaited<ReturnType<typeof startLeaderAndReader>>
let cluster: TestCluster

beforeAll(async () => {
  system = await startLeaderAndReader(SETTINGS)
}, 90_000)
afterAll(async () => {
  await cluster?.stopAll()
  await system?.stop()
})

it('a move resumes where it stopped after its BFF is killed, twice', async () => {
  const { reader, leader } = system
  const op = await callerFor(reader, OPERATOR.email, OPERATOR.password)
  const joinToken = (await op.joinTokens.create({ description: 'resume', ttlHours: 1, uses: 4 })).token
  const { tenantId, caller: dev } = await tenantWithOwner(reader, op, { slug: 'resume', name: 'Resume' }, { email: 'dev@resume.test', name: 'Dev', password: 'dev-password' })
  cluster = await createCluster({ server: () => `http://127.0.0.1:${leader.port}`, joinToken: () => joinToken, names: ['resume-a', 'resume-b'] })
  cluster.start('resume-a')
  cluster.start('resume-b')
  await readyNodes(op, 2)

  // A counter that takes 2 s to shut down (a database flushing): the stop-source step lasts that long.
  const appId = (
    await dev.apps.create({
      tenantId,
      name: 'resumed',
      replicas: 1,
      spec: { command: 'node', args: ['examples/counter/server.js'], cpuMillis: 100, memoryMb: 64, stopGraceSeconds: 10, env: { SHUTDOWN_DELAY_MS: '2000' }, volumes: [{ name: 'data', driver: 'local', sizeMb: 16, mountPath: '/data' }] },
    })
  ).id
  const current = async () => (await dev.apps.get({ tenantId, appId })).instances.find((i) => i.desiredState === 'running')
  const inst = await waitFor('the counter running', async () => {
    const i = await current()
    return i?.state === 'running' && i.url ? i : null
  }, 30_000)
  const countAt = async (url: string) => ((await (await fetch(url, { signal: AbortSignal.timeout(2000) })).json()) as { count: number }).count
  await waitFor('the counter counting', async () => (await countAt(inst.url!)) > 3)
  const before = await countAt(inst.url!)
  const target = inst.node!.name === 'resume-a' ? 'resume-b' : 'resume-a'
  const targetId = (await op.nodes.list()).find((n) => n.name === target)!.id

  const move = await op.moves.start({ instanceId: inst.id, targetNodeId: targetId })
  const at = (step: string) => waitFor(`the move at ${step}`, async () => (await op.moves.get({ moveId: move.id })).step === step, 60_000, 20)

  // 1: the leader dies while the source is stopping (its app flushes for 2 s).
  await at('stop-source')
  await leader.kill()
  await new Promise((r) => setTimeout(r, 500))
  await leader.start()
  // 2: and again once the fence moved, while the target starts.
  await waitFor('the fence moved', async () => (await op.moves.get({ moveId: move.id })).steps.find((s) => s.name === 'move-fence')!.state === 'done', 60_000, 20)
  await leader.kill()
  await new Promise((r) => setTimeout(r, 500))
  await leader.start()

  const done = await waitFor('the move to finish', async () => {
    const m = await op.moves.get({ moveId: move.id })
    return m.state === 'succeeded' || m.state === 'failed' ? m : null
  }, 90_000, 100).catch(async (err) => {
    const m = await op.moves.get({ moveId: move.id })
    console.error(JSON.stringify({ state: m.state, step: m.step, error: m.error, steps: m.steps.map((s) => `${s.name}:${s.state}:${s.detail}:${s.error}`) }, null, 1))
    throw err
  })
  expect(done.error).toBeNull()
  expect(done.state).toBe('succeeded')
  expect(done.steps.map((s) => s.state)).toEqual(['done', 'done', 'done', 'done', 'done', 'done', 'done', 'done', 'skipped', 'done'])
  expect(done.downtimeMs).toBeGreaterThan(0)
  // One move, one instance: nothing was started twice or over again.
  expect((await op.moves.list({ limit: 10 })).filter((m) => m.instance.id === inst.id)).toHaveLength(1)
  const after = await waitFor('running on the target', async () => {
    const i = await current()
    return i?.node?.name === target && i.state === 'running' && i.url ? i : null
  }, 30_000)
  expect(after.id).toBe(inst.id)
  expect(after.volumes[0]!.epoch).toBe(inst.volumes[0]!.epoch + 1)
  expect(await waitFor('serving at the target', () => countAt(after.url!).catch(() => 0))).toBeGreaterThanOrEqual(before)
}, 240_000)
