import { afterAll, beforeAll, describe, it } from 'vitest'
import { addMember, callerFor, OPERATOR, startTestBff, waitFor, type TestBff } from './harness'
import { joinSim, type SimAgent } from './sim-agent'

// Status reports are group-committed; with a minute's delay here, only a report written at once shows while the test runs.
let bff: TestBff
let sim: SimAgent | null = null

beforeAll(async () => {
  bff = await startTestBff({ ALVEARY_STATUS_FLUSH_MS: '60000', ALVEARY_HEARTBEAT_MS: '10000' })
})
afterAll(async () => {
  sim?.close()
  await bff?.stop()
  await bff?.dropDatabase()
})

describe('status reports', () => {
  it('writes a full report that changes an instance at once, not after the group commit\'s delay', async () => {
    const op = await callerFor(bff, OPERATOR.email, OPERATOR.password)
    const joinToken = (await op.joinTokens.create({ description: 'flush', ttlHours: 1, uses: 1 })).token
    const t = await op.tenants.create({ slug: 'flush', name: 'Flush' })
    await addMember(bff, op, t.id, { email: 'f@flush.test', name: 'F', password: 'flush-password', role: 'owner' })
    const dev = await callerFor(bff, 'f@flush.test', 'flush-password')
    sim = await joinSim(bff.url, { joinToken }, 'flush-1')
    const app = await dev.apps.create({ tenantId: t.id, name: 'web', replicas: 1, spec: { command: 'node', cpuMillis: 10, memoryMb: 8 } })
    const instance = async (id?: string) => (await dev.apps.get({ tenantId: t.id, appId: app.id })).instances.find((i) => (id ? i.id === id : i.node?.name === 'flush-1'))
    const inst = await waitFor('placement on flush-1', () => instance())
    // What an agent sends after applying a desired state: its next frames (a move's 'running' among them) wait behind it.
    sim.send({ type: 'status', full: true, instances: [{ instanceId: inst.id, state: 'starting', pid: null, restarts: 0, startedAt: null, exitCode: null, message: null, generation: 1 }] })
    await waitFor('the changed state in the store', async () => (await instance(inst.id))?.state === 'starting', 10_000)
  })
})
