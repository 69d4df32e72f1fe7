import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import type { Agent } from '@alveary/agents'
import pino from 'pino'
import { afterAll, expect, it } from 'vitest'
import { startBff, type StartedBff } from '../src/bff'
import { ZBffEnv } from '../src/config'
import { addMember, callerFor, freshDatabase, OPERATOR, startInProcessAgent, waitFor } from './harness'

// The scheduler's time-to-placement per tenant is measured by the leader and persisted, so a
// BFF that does not lead (the console may be served by any) shows it too, live.
const started: StartedBff[] = []
let db: Awaited<ReturnType<typeof freshDatabase>>
let agent: Agent | undefined
let dataDir: string | undefined
afterAll(async () => {
  await agent?.shutdown({ stopInstances: true })
  for (const b of started) await b.stop().catch(() => {})
  await db?.drop()
  if (dataDir) await rm(dataDir, { recursive: true, force: true })
})

it('placements and time-to-placement per tenant reach a BFF that is not the leader, with a live hint', { timeout: 90_000 }, async () => {
  db = await freshDatabase()
  const env = ZBffEnv.parse({ DATABASE_URL: db.url, BFF_PORT: '0', BFF_HOST: '127.0.0.1', ALVEARY_OPERATOR_EMAIL: OPERATOR.email, ALVEARY_OPERATOR_PASSWORD: OPERATOR.password, ALVEARY_HEARTBEAT_MS: '500' })
  const leader = await startBff(env, { log: pino({ level: 'silent' }) })
  started.push(leader)
  await waitFor('leader', async () => leader.core.schedulerStats() !== null)
  const follower = await startBff(env, { log: pino({ level: 'silent' }) })
  started.push(follower)

  const op = await callerFor(leader, OPERATOR.email, OPERATOR.password)
  const opFollower = await callerFor(follower, OPERATOR.email, OPERATOR.password)
  expect(await opFollower.nodes.scheduler()).toBeNull()

  // Live hints on the follower, collected in the background.
  const hints: string[] = []
  const live = (async () => {
    for await (const c of await opFollower.live.fleet()) {
      hints.push(c.kind)
      if (c.kind === 'scheduler') return
    }
  })()

  const joinToken = (await op.joinTokens.create({ description: 'series', ttlHours: 1, uses: 1 })).token
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'alveary-agent-'))
  agent = await startInProcessAgent({ server: leader.url, joinToken, name: 'series-node', dataDir })
  await waitFor('node ready', async () => (await op.nodes.list()).find((n) => n.state === 'ready'))
  const tenantId = (await op.tenants.create({ slug: 'series', name: 'Series' })).id
  await addMember(leader, op, tenantId, { email: 'owner@series.test', name: 'Owner', password: 'owner-password', role: 'owner' })
  const dev = await callerFor(leader, 'owner@series.test', 'owner-password')
  await dev.apps.create({ tenantId, name: 'hello', replicas: 3, spec: { command: 'node', args: ['examples/hello/server.js'], cpuMillis: 100, memoryMb: 64 } })

  // Samples are 10 s buckets, written once a bucket has ended.
  const rows = await waitFor(
    'samples on the follower',
    async () => {
      const series = (await opFollower.nodes.schedulerSeries({ minutes: 5 })).filter((r) => r.tenantId === tenantId)
      return series.reduce((n, r) => n + r.placed, 0) === 3 && series
    },
    45_000,
    500,
  )
  for (const r of rows) {
    expect(r.p50Ms).toBeGreaterThanOrEqual(0)
    expect(r.p99Ms).toBeGreaterThanOrEqual(r.p50Ms)
    expect(r.p99Ms).toBeLessThan(60_000)
  }
  await waitFor('live hint on the follower', async () => hints.includes('scheduler'), 15_000)
  await live
})
