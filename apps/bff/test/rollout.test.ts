import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import type { Agent } from '@alveary/agents'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { addMember, callerFor, OPERATOR, startInProcessAgent, startTestBff, waitFor, type TestBff } from './harness'

// Revisions and rolling deploys through a real BFF, a real agent and real processes.
let bff: TestBff
let dataDir: string
let agent: Agent
let tenantId: string
type Caller = Awaited<ReturnType<typeof callerFor>>
let dev: Caller

const readiness = { type: 'http' as const, path: '/healthz', intervalSeconds: 1, timeoutSeconds: 1, failureThreshold: 3 }
const hello = {
  command: 'node',
  args: ['examples/hello/server.js'],
  cpuMillis: 50,
  memoryMb: 32,
  ports: [{ name: 'http', readiness }],
  maxSurge: 1,
  maxUnavailable: 1,
  // Generous: a good revision that is slow to get ready on a busy machine must not roll back
  // (the broken ones below crash, which fails them at once).
  progressDeadlineSeconds: 120,
}

beforeAll(async () => {
  bff = await startTestBff()
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'alveary-rollout-'))
  const op = await callerFor(bff, OPERATOR.email, OPERATOR.password)
  const joinToken = (await op.joinTokens.create({ description: 'rollout', ttlHours: 1 })).token
  tenantId = (await op.tenants.create({ slug: 'roll', name: 'Roll' })).id
  await addMember(bff, op, tenantId, { email: 'dev@roll.test', name: 'Dev', password: 'dev-password', role: 'owner' })
  dev = await callerFor(bff, 'dev@roll.test', 'dev-password')
  agent = await startInProcessAgent({ server: bff.url, joinToken, name: 'roll-node', dataDir })
  await waitFor('node ready', async () => (await op.nodes.list()).find((n) => n.name === 'roll-node' && n.state === 'ready'))
})
afterAll(async () => {
  await agent?.shutdown({ stopInstances: true })
  await bff?.stop()
  await bff?.dropDatabase()
  if (dataDir) await rm(dataDir, { recursive: true, force: true })
})

const get = (appId: string) => dev.apps.get({ tenantId, appId })
/** Every running instance of the app, as its processes see their environment. */
const running = async (appId: string) => (await get(appId)).instances.filter((i) => i.desiredState === 'running' && i.state === 'running')

describe('rolling deploys', () => {
  let appId: string

  it('replaces every instance with the new revision and keeps the history', async () => {
    appId = (await dev.apps.create({ tenantId, name: 'web', replicas: 3, spec: hello })).id
    const first = await waitFor('3 running', async () => ((await running(appId)).length === 3 ? running(appId) : null), 30_000)
    await dev.apps.update({ tenantId, appId, spec: { ...hello, env: { GREETING: 'v2' } } })
    const done = await waitFor(
      'rollout done',
      async () => {
        const d = await get(appId)
        return d.rollout?.state === 'succeeded' && d
      },
      60_000,
    )
    expect(done.revision).toBe(2)
    expect(done.rollout).toMatchObject({ kind: 'update', fromRevision: 1, toRevision: 2, newReady: 3, oldInstances: 0 })
    const now = await running(appId)
    expect(now.map((i) => i.revision)).toEqual([2, 2, 2])
    expect(now.some((i) => first.some((f) => f.id === i.id))).toBe(false)
    const revs = await dev.apps.revisions({ tenantId, appId })
    expect(revs.map((r) => [r.revision, r.cause, r.current])).toEqual([
      [2, 'update', true],
      [1, 'created', false],
    ])
    expect(revs[0]!.changes).toEqual([{ field: 'env.GREETING', from: null, to: 'v2' }])
    expect(now.every((i) => i.ready === true)).toBe(true)
  })

  it('an update that changes nothing instances run keeps them (no rollout)', async () => {
    const before = (await running(appId)).map((i) => i.id).sort()
    await dev.apps.update({ tenantId, appId, spec: { ...hello, env: { GREETING: 'v2' }, maxSurge: 2 } })
    await waitFor('relabelled', async () => (await running(appId)).every((i) => i.revision === 3))
    expect((await running(appId)).map((i) => i.id).sort()).toEqual(before)
    expect((await dev.apps.rollouts({ tenantId, appId })).length).toBe(1)
  })

  it('rolls a broken revision back by itself while the old instances keep serving', async () => {
    const old = await running(appId)
    await dev.apps.update({ tenantId, appId, spec: { ...hello, env: { GREETING: 'v2' }, maxSurge: 1, args: ['-e', 'process.exit(3)'] } })
    let minServing = Infinity
    const rolledBack = await waitFor(
      'automatic rollback',
      async () => {
        const d = await get(appId)
        const serving = d.instances.filter((i) => i.state === 'running' && i.revision !== 4 && old.some((o) => o.id === i.id))
        minServing = Math.min(minServing, serving.length)
        const rs = await dev.apps.rollouts({ tenantId, appId })
        return rs.find((r) => r.toRevision === 4 && r.state === 'rolled_back') && rs
      },
      60_000,
      50,
    )
    expect(rolledBack[0]).toMatchObject({ kind: 'auto_rollback', fromRevision: 4, toRevision: 5 })
    // max-unavailable 1 of 3: at least two old instances served all along.
    expect(minServing).toBeGreaterThanOrEqual(2)
    const d = await waitFor('rollback done', async () => {
      const d = await get(appId)
      return d.rollout?.state === 'succeeded' && (await running(appId)).length === 3 && d
    }, 60_000)
    expect(d.revision).toBe(5)
    expect((await dev.apps.revisions({ tenantId, appId }))[0]).toMatchObject({ revision: 5, cause: 'automatic rollback to revision 3' })
    // The survivors of the old revision are still the same processes.
    const survivors = (await running(appId)).filter((i) => old.some((o) => o.id === i.id))
    expect(survivors.length).toBeGreaterThanOrEqual(2)
  })

  it('rolls back by hand to any earlier revision', async () => {
    await dev.apps.rollback({ tenantId, appId, revision: 1 })
    const d = await waitFor('manual rollback done', async () => {
      const d = await get(appId)
      return d.rollout?.kind === 'rollback' && d.rollout.state === 'succeeded' && d
    }, 60_000)
    expect(d.revision).toBe(6)
    expect(d.spec.env).toEqual({})
    const revs = await dev.apps.revisions({ tenantId, appId })
    expect(revs[0]).toMatchObject({ revision: 6, cause: 'rollback to revision 1' })
    expect(revs[0]!.changes).toContainEqual({ field: 'env.GREETING', from: 'v2', to: null })
  })

  it('refuses a rollback to the current or an unknown revision', async () => {
    await expect(dev.apps.rollback({ tenantId, appId, revision: 6 })).rejects.toThrow(/current/)
    await expect(dev.apps.rollback({ tenantId, appId, revision: 99 })).rejects.toThrow(/not found/)
  })
})

describe('rolling deploys without a readiness check', () => {
  // "Running" is all such an instance says: it must last the minimum ready time (3 s by default) to count.
  const plain = { command: 'node', args: ['examples/hello/server.js'], cpuMillis: 50, memoryMb: 32, maxSurge: 1, maxUnavailable: 1, progressDeadlineSeconds: 120 }

  it('a revision that crashes soon after each start never replaces the old instances and rolls back', async () => {
    const appId = (await dev.apps.create({ tenantId, name: 'plain', replicas: 3, spec: plain })).id
    const old = await waitFor('3 running', async () => ((await running(appId)).length === 3 ? running(appId) : null), 30_000)
    await dev.apps.update({ tenantId, appId, spec: { ...plain, args: ['-e', 'setTimeout(() => process.exit(3), 1000)'] } })
    let minServing = Infinity
    const rolledBack = await waitFor(
      'automatic rollback',
      async () => {
        const d = await get(appId)
        minServing = Math.min(minServing, d.instances.filter((i) => i.state === 'running' && old.some((o) => o.id === i.id)).length)
        const rs = await dev.apps.rollouts({ tenantId, appId })
        return rs.find((r) => r.toRevision === 2 && r.state === 'rolled_back')
      },
      90_000,
      50,
    )
    expect(rolledBack.message).toMatch(/kept failing|not ready/)
    expect(minServing).toBeGreaterThanOrEqual(2)
    await waitFor('rollback done', async () => (await get(appId)).rollout?.state === 'succeeded' && (await running(appId)).length === 3, 60_000)
    expect((await running(appId)).filter((i) => old.some((o) => o.id === i.id)).length).toBeGreaterThanOrEqual(2)
  }, 180_000)

  it('a good revision rolls out once each new instance has run for the minimum ready time', async () => {
    const appId = (await get((await dev.apps.list({ tenantId })).find((a) => a.name === 'plain')!.id)).id
    const t0 = Date.now()
    await dev.apps.update({ tenantId, appId, spec: { ...plain, env: { GREETING: 'v3' }, minReadySeconds: 1 } })
    const done = await waitFor('rollout done', async () => {
      const d = await get(appId)
      return d.rollout?.state === 'succeeded' && d.rollout.toRevision === d.revision && d
    }, 60_000)
    expect(done.spec.minReadySeconds).toBe(1)
    // Three waves of one new instance each (max-surge 1), each counted after 1 s of running.
    expect(Date.now() - t0).toBeGreaterThanOrEqual(2_000)
    expect((await running(appId)).every((i) => i.revision === done.revision)).toBe(true)
  }, 120_000)
})
