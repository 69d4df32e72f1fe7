import { mkdtemp, rm } from 'node:fs/promises'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import type { Agent } from '@alveary/agents'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { haproxyHere } from '../../../packages/agents/test/helpers'
import { addMember, callerFor, OPERATOR, startInProcessAgent, startTestBff, waitFor, freeListenerPort, type TestBff } from './harness'

// Load balancers end to end: a real BFF, a real agent serving them with HAProxy (the built-in
// proxy where HAProxy is missing, except in CI), real processes behind them.
const haveHaproxy = haproxyHere('the load-balancer tests run on the built-in proxy')

let bff: TestBff
let dataDir: string
let agent: Agent
let tenantId: string
type Caller = Awaited<ReturnType<typeof callerFor>>
let dev: Caller
let op: Caller
let lbPortBase: number

// Three failures in a row: on a busy machine one slow probe must not take a healthy instance out.
const readiness = { type: 'http' as const, path: '/healthz', intervalSeconds: 1, timeoutSeconds: 1, failureThreshold: 3 }
const hello = (version: string) => ({
  command: 'node',
  args: ['examples/hello/server.js'],
  env: { VERSION: version },
  cpuMillis: 50,
  memoryMb: 32,
  ports: [{ name: 'http', readiness }],
  maxSurge: 1,
  maxUnavailable: 1,
  // Generous: a good revision that is slow to get ready on a busy machine must not roll back.
  progressDeadlineSeconds: 120,
})

beforeAll(async () => {
  lbPortBase = await freeListenerPort()
  bff = await startTestBff({ ALVEARY_LB_PORT_MIN: String(lbPortBase), ALVEARY_LB_PORT_MAX: String(lbPortBase + 1) })
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'alveary-lb-'))
  op = await callerFor(bff, OPERATOR.email, OPERATOR.password)
  const joinToken = (await op.joinTokens.create({ description: 'lb', ttlHours: 1 })).token
  tenantId = (await op.tenants.create({ slug: 'lb', name: 'Lb' })).id
  await addMember(bff, op, tenantId, { email: 'dev@lb.test', name: 'Dev', password: 'dev-password', role: 'owner' })
  dev = await callerFor(bff, 'dev@lb.test', 'dev-password')
  agent = await startInProcessAgent({ server: bff.url, joinToken, name: 'lb-node', dataDir })
  const node = await waitFor('node ready', async () => (await op.nodes.list()).find((n) => n.name === 'lb-node' && n.state === 'ready'))
  expect(agent.lbDriver).toBe(haveHaproxy ? 'haproxy' : 'builtin')
  await op.loadBalancers.setNode({ nodeId: node.id, enabled: true })
})
afterAll(async () => {
  await agent?.shutdown({ stopInstances: true })
  await bff?.stop()
  await bff?.dropDatabase()
  if (dataDir) await rm(dataDir, { recursive: true, force: true })
})

const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 16 })
/** GET with the retry every HTTP client does on a reused connection closed unanswered (RFC 9112 §9.3.1). */
function get(url: string, headers: Record<string, string> = {}, via = keepAlive, retry = true): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers, agent: via }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d) => (body += d))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    req.on('error', (err: NodeJS.ErrnoException) => (retry && req.reusedSocket && err.code === 'ECONNRESET' ? resolve(get(url, headers, via, false)) : reject(err)))
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')))
  })
}
const who = (body: string) => /hello from (\S+)/.exec(body)?.[1] ?? body

/** Clients hammering a URL until stop(); every answer that is not a 200 is a failure. */
function load(url: string, clients = 8) {
  let running = true
  const bodies: string[] = []
  const failures: string[] = []
  const loops = Array.from({ length: clients }, async () => {
    const own = new http.Agent({ keepAlive: true, maxSockets: 1 })
    while (running) {
      try {
        const r = await get(url, {}, own)
        if (r.status === 200) bodies.push(r.body)
        else failures.push(`${r.status} ${r.body.slice(0, 100)}`)
      } catch (err) {
        failures.push((err as Error).message)
      }
    }
    own.destroy()
  })
  return {
    bodies,
    async stop() {
      running = false
      await Promise.all(loops)
      return { bodies, failures }
    },
  }
}

describe('load balancers', () => {
  let web: string
  let api: string
  let url: string
  let lbId: string

  it('is created asynchronously and spreads traffic over the replicas', async () => {
    web = (await dev.apps.create({ tenantId, name: 'web', replicas: 3, spec: hello('1') })).id
    api = (await dev.apps.create({ tenantId, name: 'api', replicas: 1, spec: hello('1') })).id
    const created = await dev.loadBalancers.create({
      tenantId,
      name: 'front',
      drainSeconds: 2,
      listeners: [
        {
          protocol: 'http',
          rules: [
            { host: 'api.example.test', targets: [{ appId: api, port: 'http' }] },
            { pathPrefix: '/api/', targets: [{ appId: api, port: 'http' }] },
            { targets: [{ appId: web, port: 'http' }] },
          ],
        },
      ],
    })
    lbId = created.id
    expect(['provisioning', 'active']).toContain(created.state)
    expect(created.retryUnanswered).toBe(false)
    expect(created.listeners[0]!.port).toBe(lbPortBase)
    const active = await waitFor('active', async () => {
      const l = await dev.loadBalancers.get({ tenantId, lbId })
      return l.state === 'active' && l
    }, 20_000)
    url = active.addresses[0]!.url
    expect(url).toBe(`http://127.0.0.1:${lbPortBase}`)
    const instances = await waitFor('3 ready', async () => {
      const d = await dev.apps.get({ tenantId, appId: web })
      return d.instances.filter((i) => i.ready).length === 3 && d.instances
    }, 30_000)
    const seen = await waitFor('traffic on every replica', async () => {
      const s = new Set<string>()
      for (let i = 0; i < 30; i++) s.add(who((await get(url)).body))
      return s.size === 3 && s
    })
    expect([...seen].sort()).toEqual(instances.map((i) => i.id).sort())
  })

  it('shows every server with its place in the pool and its traffic', async () => {
    const gen = load(url, 4)
    try {
      const lb = await waitFor('traffic on every server', async () => {
        const l = await dev.loadBalancers.get({ tenantId, lbId })
        const web3 = l.servers.filter((s) => s.app === 'web')
        return web3.length === 3 && web3.every((s) => s.state === 'in_pool' && (s.perSecond ?? 0) > 0) && l
      }, 120_000)
      expect(lb.servers.filter((s) => s.app === 'api')).toHaveLength(1)
    } finally {
      await gen.stop()
    }
  }, 150_000)

  it('routes by host and by path prefix', async () => {
    const apiInstance = (await dev.apps.get({ tenantId, appId: api })).instances[0]!.id
    await waitFor('api routed', async () => who((await get(`${url}/x`, { host: 'api.example.test' })).body) === apiInstance)
    expect(who((await get(`${url}/api/users`)).body)).toBe(apiInstance)
    expect(who((await get(`${url}/apix`)).body)).not.toBe(apiInstance)
  })

  it('takes an instance failing readiness out of the pool and back', async () => {
    const [target] = (await dev.apps.get({ tenantId, appId: web })).instances
    await fetch(new URL('/admin/unready', target!.url!), { method: 'POST' })
    await waitFor('left the pool', async () => {
      const s = new Set<string>()
      for (let i = 0; i < 30; i++) s.add(who((await get(url)).body))
      return s.size === 2 && !s.has(target!.id)
    })
    await fetch(new URL('/admin/ready', target!.url!), { method: 'POST' })
    await waitFor('back in the pool', async () => {
      for (let i = 0; i < 30; i++) if (who((await get(url)).body) === target!.id) return true
      return false
    })
  })

  it('keeps serving during a rolling deploy: zero failed requests', async () => {
    const gen = load(url)
    await dev.apps.update({ tenantId, appId: web, spec: hello('2') })
    const to = (await dev.apps.get({ tenantId, appId: web })).revision
    const rollout = await waitFor('rolled out', async () => {
      const r = (await dev.apps.get({ tenantId, appId: web })).rollout
      return r && r.state !== 'progressing' && r
    }, 150_000)
    expect(rollout).toMatchObject({ toRevision: to, state: 'succeeded' })
    await waitFor('new version served', async () => (await get(url)).body.includes('version 2'), 60_000)
    const { bodies, failures } = await gen.stop()
    expect(failures).toEqual([])
    expect(bodies.some((b) => b.includes('version 1'))).toBe(true)
    expect(bodies.some((b) => b.includes('version 2'))).toBe(true)
  }, 240_000)

  it('keeps serving while it scales down and up: zero failed requests', async () => {
    const gen = load(url)
    await dev.apps.scale({ tenantId, appId: web, replicas: 1 })
    await waitFor('1 left', async () => (await dev.apps.get({ tenantId, appId: web })).instances.filter((i) => i.state !== 'stopped').length === 1, 30_000)
    await dev.apps.scale({ tenantId, appId: web, replicas: 3 })
    await waitFor('3 ready again', async () => (await dev.apps.get({ tenantId, appId: web })).instances.filter((i) => i.ready).length === 3, 30_000)
    const { failures } = await gen.stop()
    expect(failures).toEqual([])
  }, 90_000)

  it('rolls a broken revision back by itself; the old revision never stops serving', async () => {
    const gen = load(url)
    await dev.apps.update({ tenantId, appId: web, spec: { ...hello('3'), args: ['-e', 'setInterval(() => {}, 1000)'], progressDeadlineSeconds: 10 } })
    await waitFor('rolled back', async () => (await dev.apps.rollouts({ tenantId, appId: web })).some((r) => r.state === 'rolled_back'), 60_000)
    await waitFor('rollback done', async () => (await dev.apps.get({ tenantId, appId: web })).rollout?.state === 'succeeded', 60_000)
    const { bodies, failures } = await gen.stop()
    expect(failures).toEqual([])
    expect(bodies.every((b) => b.includes('version 2'))).toBe(true)
  }, 150_000)

  it('validates its input: unknown apps, ports of other tenants, stickiness bounds', async () => {
    const other = (await op.tenants.create({ slug: 'other', name: 'Other' })).id
    await addMember(bff, op, other, { email: 'eve@other.test', name: 'Eve', password: 'eve-password', role: 'owner' })
    const eve = await callerFor(bff, 'eve@other.test', 'eve-password')
    await expect(eve.loadBalancers.create({ tenantId: other, name: 'steal', listeners: [{ protocol: 'http', rules: [{ targets: [{ appId: web, port: 'http' }] }] }] })).rejects.toThrow(/does not exist/)
    await expect(dev.loadBalancers.create({ tenantId, name: 'taken', listeners: [{ protocol: 'http', port: lbPortBase, rules: [{ targets: [{ appId: web, port: 'http' }] }] }] })).rejects.toThrow(/taken/)
    await expect(dev.loadBalancers.create({ tenantId, name: 'nope', listeners: [{ protocol: 'http', rules: [{ targets: [{ appId: web, port: 'admin' }] }] }] })).rejects.toThrow(/no port named/)
    await expect(dev.loadBalancers.create({ tenantId, name: 'sticky', stickySeconds: 86_401, listeners: [{ protocol: 'http', rules: [{ targets: [{ appId: web, port: 'http' }] }] }] })).rejects.toThrow(/86,400/)
  })

  it('retries unanswered requests when asked, and keeps serving through the change', async () => {
    const cur = await dev.loadBalancers.get({ tenantId, lbId })
    const updated = await dev.loadBalancers.update({ tenantId, lbId, algorithm: cur.algorithm, stickySeconds: cur.stickySeconds, drainSeconds: cur.drainSeconds, retryUnanswered: true, listeners: cur.listeners })
    expect(updated.retryUnanswered).toBe(true)
    await waitFor('served again', async () => (await dev.loadBalancers.get({ tenantId, lbId })).state === 'active' && (await get(url)).status === 200)
  })

  it('is removed from the node when deleted', async () => {
    await dev.loadBalancers.delete({ tenantId, lbId })
    await waitFor('not served', async () => {
      try {
        await get(url, {}, new http.Agent({ keepAlive: false }), false)
        return false
      } catch {
        return true
      }
    })
  })
})
