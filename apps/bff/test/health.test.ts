import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import type { Agent } from '@alveary/agents'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { addMember, callerFor, OPERATOR, startInProcessAgent, startTestBff, waitFor, type TestBff } from './harness'

// Health checks run by a real agent next to real processes (examples/hello), reported to the BFF.
let bff: TestBff
let dataDir: string
let agent: Agent
let tenantId: string
type Caller = Awaited<ReturnType<typeof callerFor>>
let dev: Caller

beforeAll(async () => {
  bff = await startTestBff()
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'alveary-health-'))
  const op = await callerFor(bff, OPERATOR.email, OPERATOR.password)
  const joinToken = (await op.joinTokens.create({ description: 'health', ttlHours: 1 })).token
  tenantId = (await op.tenants.create({ slug: 'health', name: 'Health' })).id
  await addMember(bff, op, tenantId, { email: 'dev@health.test', name: 'Dev', password: 'dev-password', role: 'owner' })
  dev = await callerFor(bff, 'dev@health.test', 'dev-password')
  agent = await startInProcessAgent({ server: bff.url, joinToken, name: 'health-node', dataDir })
  await waitFor('node ready', async () => (await op.nodes.list()).find((n) => n.name === 'health-node' && n.state === 'ready'))
})
afterAll(async () => {
  await agent?.shutdown({ stopInstances: true })
  await bff?.stop()
  await bff?.dropDatabase()
  if (dataDir) await rm(dataDir, { recursive: true, force: true })
})

const post = (url: string, p: string) => fetch(new URL(p, url), { method: 'POST' }).then((r) => r.text())

describe('health checks', () => {
  let appId: string
  const instance = async (id: string) => (await dev.apps.get({ tenantId, appId })).instances.find((i) => i.id === id)!

  it('reports readiness per instance, with the reason of the last failure', async () => {
    appId = (
      await dev.apps.create({
        tenantId,
        name: 'checked',
        replicas: 2,
        spec: {
          command: 'node',
          args: ['examples/hello/server.js'],
          // Node needs ~0.1-0.3 s of CPU to start: at 50 millicores that took seconds on a loaded machine,
          // and a liveness check without an initial delay killed the restarted app before it listened
          // (restarted again and again). As with Kubernetes, liveness waits for a slow start.
          cpuMillis: 200,
          memoryMb: 32,
          ports: [
            {
              name: 'http',
              readiness: { type: 'http', path: '/healthz', intervalSeconds: 1, timeoutSeconds: 1, failureThreshold: 1 },
              liveness: { type: 'http', path: '/livez', intervalSeconds: 1, timeoutSeconds: 1, failureThreshold: 2, initialDelaySeconds: 5 },
            },
          ],
        },
      })
    ).id
    const ready = await waitFor('both ready', async () => {
      const d = await dev.apps.get({ tenantId, appId })
      return d.instances.length === 2 && d.instances.every((i) => i.state === 'running' && i.ready === true) && d.instances
    }, 30_000)
    const target = ready[0]!
    await post(target.url!, '/admin/unready')
    const unready = await waitFor('not ready', async () => {
      const i = await instance(target.id)
      return i.ready === false && i
    })
    expect(unready.healthMessage).toMatch(/^readiness http http \/healthz: status 503, expected 200$/)
    expect(unready.healthFailedAt).toBeInstanceOf(Date)
    expect(unready.state).toBe('running')
    // The other instance is unaffected.
    expect((await instance(ready[1]!.id)).ready).toBe(true)
    await post(target.url!, '/admin/ready')
    const back = await waitFor('ready again', async () => {
      const i = await instance(target.id)
      return i.ready === true && i
    })
    // The last failure stays visible after recovery.
    expect(back.healthMessage).toMatch(/status 503/)
  })

  it('restarts a hung instance when its liveness check fails', async () => {
    const before = (await dev.apps.get({ tenantId, appId })).instances[1]!
    await post(before.url!, '/admin/hang')
    const restarted = await waitFor('restarted', async () => {
      const i = await instance(before.id)
      return i.restarts > before.restarts && i.state === 'running' && i.ready === true && i
    }, 30_000, 50)
    // Why it was restarted: the check that timed out and the exit it caused, kept as an event of
    // the tenant's (the status shows only the latest state and check).
    const exits = (await dev.events.list({ tenantId })).filter((e) => e.type === 'instance.exited' && e.subject === `instance/${before.id}`)
    expect(exits.map((e) => e.message)).toContainEqual(expect.stringMatching(/^liveness check failed \(liveness http http \/livez: timed out after 1s\)/))
    const events = agent.reports().find((r) => r.instanceId === before.id)!
    expect(events.restarts).toBe(before.restarts + 1)
    // Serving again.
    expect(await (await fetch(restarted.url!)).text()).toContain(before.id)
  })

  it('rejects bad checks at the API', async () => {
    const bad = { command: 'node', cpuMillis: 50, memoryMb: 32, ports: [{ name: 'http', readiness: { type: 'http' as const, path: 'no-slash', intervalSeconds: 1, timeoutSeconds: 5 } }] }
    await expect(dev.apps.create({ tenantId, name: 'bad', replicas: 1, spec: bad })).rejects.toThrow(/starts with \/|longer than the interval/)
  })
})
