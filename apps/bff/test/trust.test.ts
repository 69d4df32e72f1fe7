/**
 * Trusted tenants: a node that cannot sandbox process apps (here: `--sandbox off`, which works
 * anywhere) runs only the process apps of tenants an operator trusts. Trust is the operator's
 * call, audited, and changing it places waiting instances at once.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { createAgent, ZAgentConfig, type Agent } from '@alveary/agents'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { repoRoot } from '../src/config'
import { callerFor, OPERATOR, startTestBff, tenantWithOwner, waitFor, type TestBff } from './harness'
import { retireConfig, retireNode } from './cluster'

let bff: TestBff
let dataDir: string
let agent: Agent
type Caller = Awaited<ReturnType<typeof callerFor>>
let op: Caller
let dev: Caller
let tenantId: string

beforeAll(async () => {
  bff = await startTestBff()
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'alveary-trust-'))
  op = await callerFor(bff, OPERATOR.email, OPERATOR.password)
  const joinToken = (await op.joinTokens.create({ description: 'unsandboxed', ttlHours: 1, uses: 1 })).token
  ;({ tenantId, caller: dev } = await tenantWithOwner(bff, op, { slug: 'untrusted', name: 'Untrusted' }, { email: 'dev@untrusted.test', name: 'Dev', password: 'dev-password' }))
  const config = { server: bff.url, joinToken, name: 'plain-node', address: '127.0.0.1', labels: '', cpuMillis: '4000', memoryMb: '4096', dataDir, stopOnExit: false, logLevel: 'silent', dockerHost: 'none', sandbox: 'off' }
  agent = createAgent(ZAgentConfig.parse(config), { cwd: repoRoot })
  await agent.start()
  await waitFor('node ready', async () => (await op.nodes.list()).find((n) => n.name === 'plain-node' && n.state === 'ready'))
})
afterAll(async () => {
  await agent?.shutdown({ stopInstances: true })
  // Whatever the agent's stop left on the machine is a leak: removed, and the suite fails naming it (after the rest is stopped).
  const left = dataDir ? await retireNode(retireConfig(dataDir, 'plain-node')) : []
  await bff?.stop()
  await bff?.dropDatabase()
  if (dataDir) await rm(dataDir, { recursive: true, force: true })
  expect(left).toEqual([])
})

it('places an untrusted tenant’s process apps only on nodes that sandbox them; trusting it (operators only, audited) places them', async () => {
  const node = (await op.nodes.list()).find((n) => n.name === 'plain-node')!
  expect(node.sandbox).toMatchObject({ mode: 'unsandboxed', reason: expect.stringContaining('--sandbox off') })
  expect((await op.tenants.list()).find((t) => t.id === tenantId)?.trusted).toBe(false)

  const app = await dev.apps.create({ tenantId, name: 'web', replicas: 1, spec: { command: 'node', args: ['examples/hello/server.js'], cpuMillis: 100, memoryMb: 64 } })
  const pending = await waitFor('pending with the reason', async () => {
    const i = (await dev.apps.get({ tenantId, appId: app.id })).instances[0]
    return i?.pendingReason?.includes('cannot sandbox process apps') && i
  })
  expect(pending.node).toBeNull()

  // Only an operator decides; a tenant owner cannot trust itself.
  await expect(dev.tenants.setTrusted({ tenantId, trusted: true })).rejects.toMatchObject({ code: 'FORBIDDEN' })
  expect((await op.tenants.setTrusted({ tenantId, trusted: true })).trusted).toBe(true)
  const running = await waitFor('placed and running', async () => {
    const i = (await dev.apps.get({ tenantId, appId: app.id })).instances[0]
    return i?.state === 'running' && i
  }, 30_000)
  expect(running.node?.name).toBe('plain-node')
  expect((await dev.events.list({ tenantId, limit: 50 })).some((e) => e.type === 'tenant.trusted')).toBe(true)
})
