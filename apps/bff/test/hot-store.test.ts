import { PROTOCOL_VERSION } from '@alveary/core/protocol'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { addMember, callerFor, freshDatabase, OPERATOR, startTestBff, waitFor, type TestBff } from './harness'

// The hot store in its own database, and the node lifecycle's guard against mass eviction.
let bff: TestBff
let hotDb: Awaited<ReturnType<typeof freshDatabase>>
type Caller = Awaited<ReturnType<typeof callerFor>>
let op: Caller
let joinToken: string

/** A simulated node: joins, then heartbeats until stopped. */
async function simNode(name: string) {
  const ws = new WebSocket(`${bff.url.replace('http', 'ws')}/agent`)
  await new Promise((r) => ws.once('open', r))
  ws.send(JSON.stringify({ type: 'hello', protocolVersion: PROTOCOL_VERSION, auth: { joinToken }, node: { name, address: '127.0.0.1', labels: {}, cpuMillis: 1000, memoryMb: 1024, drivers: ['process'], agentVersion: 't' } }))
  await new Promise((r) => ws.once('message', r))
  const beat = setInterval(() => ws.send(JSON.stringify({ type: 'heartbeat', cpuUsedMillis: 0, memoryUsedMb: 0, appliedGeneration: 0 })), 200)
  return {
    silence() {
      clearInterval(beat)
      ws.terminate()
    },
  }
}

beforeAll(async () => {
  hotDb = await freshDatabase()
  bff = await startTestBff({ DATABASE_URL_HOT: hotDb.url, ALVEARY_NODE_LEASE_MS: '1000', ALVEARY_EVICTION_GRACE_MS: '500' })
  op = await callerFor(bff, OPERATOR.email, OPERATOR.password)
  joinToken = (await op.joinTokens.create({ description: 'hot', ttlHours: 1, uses: 10 })).token
})
afterAll(async () => {
  await bff?.stop()
  await bff?.dropDatabase()
  await hotDb?.drop()
})

describe('hot store on its own database', () => {
  it('keeps node leases and events out of the desired-state database', async () => {
    const n = await simNode('hot-1')
    await waitFor('ready', async () => (await op.nodes.list()).find((x) => x.name === 'hot-1' && x.state === 'ready'))
    const main = new pg.Client({ connectionString: bff.databaseUrl }).on('error', () => {})
    const hot = new pg.Client({ connectionString: hotDb.url }).on('error', () => {})
    await Promise.all([main.connect(), hot.connect()])
    try {
      expect((await main.query(`SELECT to_regclass('hot."NodeStatus"') AS t`)).rows[0].t).toBeNull()
      expect((await hot.query(`SELECT count(*)::int AS n FROM hot."NodeStatus"`)).rows[0].n).toBe(1)
      expect((await hot.query(`SELECT count(*)::int AS n FROM hot."Event" WHERE type = 'node.joined'`)).rows[0].n).toBe(1)
      expect((await hot.query(`SELECT to_regclass('public."Instance"') AS t`)).rows[0].t).toBeNull()
    } finally {
      await Promise.all([main.end(), hot.end()])
      n.silence()
    }
  })
})

describe('node lifecycle', () => {
  it('evicts from one lost node, but pauses when most nodes go silent at once', async () => {
    const t = await op.tenants.create({ slug: 'mass', name: 'Mass' })
    await addMember(bff, op, t.id, { email: 'm@mass.test', name: 'M', password: 'mass-password', role: 'owner' })
    const dev = await callerFor(bff, 'm@mass.test', 'mass-password')
    const nodes = await Promise.all(['m-1', 'm-2', 'm-3', 'm-4'].map(simNode))
    await waitFor('4 more ready', async () => (await op.nodes.list()).filter((x) => x.name.startsWith('m-') && x.state === 'ready').length === 4)
    const app = await dev.apps.create({ tenantId: t.id, name: 'spread', replicas: 4, spec: { command: 'node', cpuMillis: 100, memoryMb: 16, spread: 'hard' } })
    const on = async () => (await dev.apps.get({ tenantId: t.id, appId: app.id })).instances.map((i) => i.node?.name ?? null).sort()
    await waitFor('one per node', async () => JSON.stringify(await on()) === JSON.stringify(['m-1', 'm-2', 'm-3', 'm-4']))

    // One node lost: its replica is taken off it; hard spread leaves no other node, so it waits with the reason.
    nodes[0]!.silence()
    const lost = await waitFor('rescheduled off m-1, explained', async () => {
      const d = await dev.apps.get({ tenantId: t.id, appId: app.id })
      return d.instances.find((i) => !i.node && /already runs a replica of this app/.test(i.pendingReason ?? '')) ?? null
    }, 10_000)
    expect(lost.pendingReason).toMatch(/\d+ nodes?: already runs a replica of this app/)

    // Then every node at once: a control-plane network problem, not the nodes; nothing more moves.
    for (const n of nodes.slice(1)) n.silence()
    await waitFor('all not ready', async () => (await op.nodes.list()).every((x) => x.state === 'not_ready'), 10_000)
    const hot = new pg.Client({ connectionString: hotDb.url }).on('error', () => {})
    await hot.connect()
    try {
      // The lifecycle controller has looked at the silent fleet and decided to pause: nothing moved.
      await waitFor('eviction paused', async () => (await hot.query(`SELECT count(*)::int AS n FROM hot."Event" WHERE type = 'eviction.paused'`)).rows[0].n >= 1, 10_000)
      expect(await on()).toEqual(['m-2', 'm-3', 'm-4', null].sort())
    } finally {
      await hot.end()
    }
  })
})
