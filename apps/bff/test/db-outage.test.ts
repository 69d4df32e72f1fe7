import { mkdtemp, rm } from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import type { Agent } from '@alveary/agents'
import pg from 'pg'
import pino from 'pino'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { startBff, type StartedBff } from '../src/bff'
import { createChangeBus, systemClock } from '@alveary/core'
import { ZBffEnv } from '../src/config'
import { addMember, callerFor, freshDatabase, OPERATOR, startInProcessAgent, waitFor, readyNodes } from './harness'
import { retireConfig, retireNode } from './cluster'

// PostgreSQL becomes unreachable for a while and comes back. The BFF's connections go
// through a TCP proxy in this test that it cuts (open connections dropped, new ones
// refused) and restores.
function tcpProxy(target: URL) {
  let cut = false
  let silent = false
  const sockets = new Set<net.Socket>()
  const server = net.createServer((client) => {
    if (cut) return client.destroy()
    if (silent) return // accepted, never answered
    const up = net.connect(Number(target.port || 5432), target.hostname)
    for (const s of [client, up]) {
      sockets.add(s)
      s.on('error', () => {})
      s.on('close', () => {
        sockets.delete(s)
        client.destroy()
        up.destroy()
      })
    }
    // Forwards unless the network has gone silent (no error, no close: packets just vanish).
    client.on('data', (d) => silent || up.write(d))
    up.on('data', (d) => silent || client.write(d))
  })
  return new Promise<{ url(db: string): string; cut(): void; silence(): void; restore(): void; close(): Promise<void> }>((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port
      resolve({
        url(db) {
          const u = new URL(db)
          u.hostname = '127.0.0.1'
          u.port = String(port)
          return u.toString()
        },
        cut() {
          cut = true
          for (const s of sockets) s.destroy()
        },
        silence() {
          silent = true
        },
        restore() {
          cut = false
          silent = false
        },
        close: () => new Promise<void>((r) => (sockets.forEach((s) => s.destroy()), server.close(() => r()))),
      })
    }),
  )
}

type Health = { status: string; changeBus: { state: string; failedAttempts: number; reconnects: number } }
const health = async (b: StartedBff) => {
  const res = await fetch(`${b.url}/healthz`)
  return { code: res.status, body: (await res.json()) as Health }
}

const cleanups: Array<() => Promise<unknown> | unknown> = []
/** Runs every cleanup even when one fails (a BFF or agent left running would hold the next test's ports). */
async function runCleanups() {
  const results = await cleanups.splice(0).reverse().reduce<Promise<unknown[]>>(async (acc, c) => {
    const errors = await acc
    try {
      await c()
    } catch (err) {
      errors.push(err)
    }
    return errors
  }, Promise.resolve([]))
  if (results.length) throw results[0]
}
afterEach(runCleanups)
afterAll(runCleanups)

async function setup(settings: Record<string, string>) {
  const db = await freshDatabase()
  cleanups.push(() => db.drop())
  const proxy = await tcpProxy(new URL(db.url))
  cleanups.push(() => proxy.close())
  const dir = await mkdtemp(path.join(os.tmpdir(), 'alveary-outage-'))
  cleanups.push(() => rm(dir, { recursive: true, force: true }))
  const env = (url: string) => ZBffEnv.parse({ DATABASE_URL: url, BFF_PORT: '0', BFF_HOST: '127.0.0.1', ALVEARY_OPERATOR_EMAIL: OPERATOR.email, ALVEARY_OPERATOR_PASSWORD: OPERATOR.password, ...settings })
  const start = async (url: string, runControlLoops: boolean) => {
    const b = await startBff(env(url), { log: pino({ level: process.env.TEST_LOG ?? 'silent' }), runControlLoops })
    cleanups.push(() => b.stop())
    return b
  }
  return { db, proxy, dir, start }
}

async function tenantWithDeveloper(b: StartedBff, slug: string) {
  const op = await callerFor(b, OPERATOR.email, OPERATOR.password)
  const tenantId = (await op.tenants.create({ slug, name: slug })).id
  await addMember(b, op, tenantId, { email: `dev@${slug}.test`, name: 'Dev', password: 'dev-password', role: 'owner' })
  return { op, tenantId, dev: await callerFor(b, `dev@${slug}.test`, 'dev-password') }
}

async function agentOn(b: StartedBff, o: { joinToken: string; name: string; dir: string; portRange: string }) {
  const agent: Agent = await startInProcessAgent({ server: b.url, joinToken: o.joinToken, name: o.name, dataDir: path.join(o.dir, o.name), portRange: o.portRange })
  cleanups.push(() => agent.shutdown({ stopInstances: true }))
  return agent
}

describe('a database outage', () => {
  it('that drops packets without closing anything is noticed by the change bus, which comes back when the network does', async () => {
    const db = await freshDatabase()
    cleanups.push(() => db.drop())
    const proxy = await tcpProxy(new URL(db.url))
    cleanups.push(() => proxy.close())
    const pool = new pg.Pool({ connectionString: proxy.url(db.url) }).on('error', () => {})
    cleanups.push(() => pool.end())
    const bus = await createChangeBus(pool, { clock: systemClock, checkEveryMs: 300, retry: { baseMs: 50, capMs: 200 } })
    cleanups.push(() => bus.close())
    const seen: string[] = []
    bus.subscribe((c) => seen.push(c.kind))
    proxy.silence()
    await waitFor('the bus notices the silent connection', async () => !bus.connected, 10_000, 50)
    proxy.restore()
    await waitFor('the bus back', async () => bus.connected && bus.health().reconnects === 1, 10_000, 50)
    await waitFor('subscribers told to resync', async () => seen.includes('resync'), 5_000, 20)
  })

  it('is seen in /healthz and /metrics, retried for as long as it lasts, and resynced after: an agent gets the desired state it missed', async () => {
    const { db, proxy, dir, start } = await setup({ ALVEARY_HEARTBEAT_MS: '2000', ALVEARY_NODE_LEASE_MS: '120000' })
    // The leader talks to PostgreSQL directly; the agent's BFF goes through the proxy.
    const direct = await start(db.url, true)
    const cutOff = await start(proxy.url(db.url), false)
    const { op, tenantId, dev } = await tenantWithDeveloper(direct, 'outage')
    const { token } = await op.joinTokens.create({ description: 'outage', ttlHours: 1 })
    await agentOn(cutOff, { joinToken: token, name: 'behind-proxy', dir, portRange: '32600-32649' })
    const app = await dev.apps.create({ tenantId, name: 'web', replicas: 1, spec: { command: 'node', args: ['examples/hello/server.js'], cpuMillis: 10, memoryMb: 16 } })
    const running = async (n: number) => (await dev.apps.get({ tenantId, appId: app.id })).instances.filter((i) => i.state === 'running').length === n
    await waitFor('1 replica running', () => running(1), 30_000)
    const session = async () => {
      const c = new pg.Client({ connectionString: db.url }).on('error', () => {})
      await c.connect()
      try {
        return (await c.query<{ s: string }>(`SELECT "sessionId" AS s FROM hot."NodeStatus"`)).rows[0]?.s
      } finally {
        await c.end()
      }
    }
    const sessionBefore = await session()

    proxy.cut()
    const down = await waitFor('the cut BFF reports its bus down, after several attempts', async () => {
      const h = await health(cutOff)
      return h.code === 503 && h.body.changeBus.state === 'reconnecting' && h.body.changeBus.failedAttempts >= 3 ? h : null
    }, 30_000)
    expect(down.body.status).toBe('degraded')
    expect(await (await fetch(`${cutOff.url}/metrics`)).text()).toMatch(/^alveary_change_bus_connected 0$/m)

    // Meanwhile the other BFF places a second replica on the node: its notification is lost.
    await dev.apps.scale({ tenantId, appId: app.id, replicas: 2 })
    await waitFor('the second replica placed', async () => (await dev.apps.get({ tenantId, appId: app.id })).instances.every((i) => i.node), 15_000)

    proxy.restore()
    await waitFor('the bus back', async () => {
      const h = await health(cutOff)
      return h.code === 200 && h.body.changeBus.state === 'listening' && h.body.changeBus.reconnects >= 1
    }, 30_000)
    expect(await (await fetch(`${cutOff.url}/metrics`)).text()).toMatch(/^alveary_change_bus_reconnects_total [1-9]/m)
    await waitFor('the missed replica running', () => running(2), 30_000)
    // Same connection throughout: the desired state came by the resync, not by a reconnect.
    expect(await session()).toBe(sessionBefore)
  }, 120_000)

  it('on the leader: a node lost meanwhile is known NotReady to the scheduler afterwards, so its work goes elsewhere and stays there', async () => {
    const { db, proxy, dir, start } = await setup({
      ALVEARY_HEARTBEAT_MS: '300',
      ALVEARY_NODE_LEASE_MS: '1500',
      ALVEARY_EVICTION_GRACE_MS: '1000',
      ALVEARY_NODE_STARTUP_GRACE_MS: '3000',
    })
    const leader = await start(proxy.url(db.url), true)
    const { op, tenantId, dev } = await tenantWithDeveloper(leader, 'lost')
    const { token } = await op.joinTokens.create({ description: 'lost', ttlHours: 1, uses: 2 })
    await agentOn(leader, { joinToken: token, name: 'stays', dir, portRange: '32650-32699' })
    const goes = await agentOn(leader, { joinToken: token, name: 'goes', dir, portRange: '32700-32749' })
    await readyNodes(op, 2, 60_000)
    const app = await dev.apps.create({ tenantId, name: 'web', replicas: 2, spec: { command: 'node', args: ['examples/hello/server.js'], cpuMillis: 10, memoryMb: 16 } })
    const where = async () => (await dev.apps.get({ tenantId, appId: app.id })).instances.map((i) => ({ node: i.node?.name ?? null, state: i.state }))
    await waitFor('one replica on each node', async () => {
      const w = await where()
      return w.filter((x) => x.state === 'running').length === 2 && new Set(w.map((x) => x.node)).size === 2
    }, 30_000)

    proxy.cut()
    // The node "goes" is lost during the outage (its agent dies; its process lingers on the host).
    // Afterwards it is retired as an operator would (before its folder goes): its lingering
    // instance, that instance's network namespace and cgroups; anything left then fails the test.
    cleanups.push(async () => {
      const left = await retireNode(retireConfig(path.join(dir, 'goes'), 'goes'))
      if (left.length) throw new Error(`the lost node left behind: ${left.join('; ')}`)
    })
    await goes.shutdown({ stopInstances: false })
    await waitFor('the leader sees the outage', async () => (await health(leader)).body.changeBus.failedAttempts >= 2, 30_000)
    proxy.restore()

    await waitFor('both replicas running on the node that stayed', async () => {
      const w = await where()
      return w.length === 2 && w.every((x) => x.node === 'stays' && x.state === 'running')
    }, 60_000)
    // A third replica goes to the live node too.
    await dev.apps.scale({ tenantId, appId: app.id, replicas: 3 })
    await waitFor('three running on the node that stayed', async () => {
      const w = await where()
      return w.length === 3 && w.every((x) => x.node === 'stays' && x.state === 'running')
    }, 30_000)
    expect((await op.nodes.list()).find((n) => n.name === 'goes')?.state).toBe('not_ready')
  }, 150_000)
})
