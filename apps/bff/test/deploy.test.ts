import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import type { Agent } from '@alveary/agents'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { addMember, callerFor, OPERATOR, startInProcessAgent, startTestBff, waitFor, type TestBff } from './harness'

// BFF + a real agent over a real WebSocket, running real processes (the sample app).
let bff: TestBff
let dataDir: string
let agent: Agent
let joinToken: string
let tenantId: string
type Caller = Awaited<ReturnType<typeof callerFor>>
let dev: Caller

const startAgent = () => startInProcessAgent({ server: bff.url, joinToken, name: 'itest-node', dataDir })

beforeAll(async () => {
  bff = await startTestBff({ ALVEARY_STOPPED_RETENTION_MS: '60000' })
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'alveary-agent-'))
  const op = await callerFor(bff, OPERATOR.email, OPERATOR.password)
  joinToken = (await op.joinTokens.create({ description: 'itest', ttlHours: 1, uses: 10 })).token
  tenantId = (await op.tenants.create({ slug: 'itest', name: 'Itest' })).id
  await addMember(bff, op, tenantId, { email: 'dev@itest.test', name: 'Dev', password: 'dev-password', role: 'owner' })
  dev = await callerFor(bff, 'dev@itest.test', 'dev-password')
  agent = await startAgent()
  await waitFor('node ready', async () => (await op.nodes.list()).find((n) => n.name === 'itest-node' && n.state === 'ready'))
})
afterAll(async () => {
  await agent?.shutdown({ stopInstances: true })
  await bff?.stop()
  await bff?.dropDatabase()
  if (dataDir) await rm(dataDir, { recursive: true, force: true })
})

const app = (appId: string) => dev.apps.get({ tenantId, appId })

describe('deploy end to end', () => {
  let appId: string

  it('deploys 3 replicas that start on the node and answer with their instance id', async () => {
    appId = (await dev.apps.create({ tenantId, name: 'hello', replicas: 3, spec: { command: 'node', args: ['examples/hello/server.js'], cpuMillis: 100, memoryMb: 64 } })).id
    const detail = await waitFor('3 running', async () => {
      const d = await app(appId)
      return d.instances.filter((i) => i.state === 'running').length === 3 && d
    })
    expect(new Set(detail.instances.map((i) => i.url)).size).toBe(3)
    // "running" means started, not listening yet (a sandbox takes a moment to set up).
    for (const i of detail.instances) {
      const body = await waitFor('it answers', () => fetch(i.url!).then((r) => r.text(), () => null))
      expect(body).toContain(i.id)
    }
  })

  it('restarts a replica killed behind the agent’s back', async () => {
    const before = (await app(appId)).instances[0]!
    const pid = agent.reports().find((r) => r.instanceId === before.id)!.pid!
    process.kill(-pid, 'SIGKILL')
    const after = await waitFor('restart', async () => {
      const i = (await app(appId)).instances.find((x) => x.id === before.id)!
      return i.restarts >= 1 && i.state === 'running' && i
    })
    expect(after.restarts).toBeGreaterThanOrEqual(1)
  })

  it('re-adopts running instances after an agent restart without restarting them', async () => {
    const pids = new Map(agent.reports().map((r) => [r.instanceId, r.pid]))
    await agent.shutdown({ stopInstances: false })
    agent = await startAgent()
    await waitFor('reconnected', async () => agent.nodeId && agent.appliedGeneration > 0)
    // The desired state is applied: whatever the agent would do about it is done.
    await agent.settled()
    const now = new Map(agent.reports().map((r) => [r.instanceId, r.pid]))
    expect(now).toEqual(pids)
    expect((await app(appId)).instances.every((i) => i.state === 'running')).toBe(true)
  })

  it('scales to 1: two instances stop, one keeps running', async () => {
    await dev.apps.scale({ tenantId, appId, replicas: 1 })
    const d = await waitFor('2 stopped', async () => {
      const d = await app(appId)
      return d.instances.filter((i) => i.state === 'stopped').length === 2 && d
    })
    expect(d.instances.filter((i) => i.state === 'running').map((i) => i.ordinal)).toEqual([0])
    const stoppedUrl = d.instances.find((i) => i.state === 'stopped')!.url!
    await expect(fetch(stoppedUrl)).rejects.toThrow()
  })

  it('shows an instance that fits nowhere as pending with a reason', async () => {
    const big = await dev.apps.create({ tenantId, name: 'big', replicas: 1, spec: { command: 'node', cpuMillis: 5000, memoryMb: 64 } })
    const i = await waitFor('pending reason', async () => (await app(big.id)).instances[0]?.pendingReason)
    expect(i).toBe('1 node: insufficient cpu: 3900m free, 5000m asked')
    await dev.apps.delete({ tenantId, appId: big.id })
  })

  it('deletes the app: processes stop and the app disappears', async () => {
    const pids = agent.reports().filter((r) => r.pid).map((r) => r.pid!)
    await dev.apps.delete({ tenantId, appId })
    await waitFor('app removed', async () => (await dev.apps.list({ tenantId })).length === 0).catch(async (err) => {
      console.error(JSON.stringify(await dev.apps.list({ tenantId })), JSON.stringify((await app(appId).catch(() => null))?.instances))
      throw err
    })
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow()
  })
})
