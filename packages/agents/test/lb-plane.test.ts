import { randomUUID } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import pino from 'pino'
import type { TDesiredLb, TLbServer } from '@alveary/core/protocol'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createBuiltinPlane } from '../src/lb/builtin/plane'
import { createHaproxyPlane, probeHaproxy } from '../src/lb/haproxy/driver'
import type { LbPlane } from '../src/lb/types'
import { freeListenerPort, haproxyHere } from './helpers'

// Both data planes against real backends (HTTP servers in this process) on loopback.
const haveHaproxy = haproxyHere('skipping the HAProxy data-plane tests')

interface Backend {
  id: string
  port: number
  hits: number
  close(): Promise<void>
}
async function backend(name: string): Promise<Backend> {
  const b = { id: randomUUID(), port: 0, hits: 0, close: async () => {} }
  const srv = http.createServer((req, res) => {
    b.hits++
    res.end(`${name} ${req.headers.host ?? ''} ${req.url}`)
  })
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r))
  b.port = (srv.address() as AddressInfo).port
  b.close = () =>
    new Promise((r) => {
      srv.closeAllConnections()
      srv.close(() => r())
    })
  return Object.assign(b, { name })
}

const server = (b: Backend, state: TLbServer['state'] = 'ready', weight = 100): TLbServer => ({ id: b.id, address: '127.0.0.1', port: b.port, weight, state })

function lb(port: number, backends: Record<string, TLbServer[]>, routes: TDesiredLb['listeners'][number]['routes'], extra: Partial<TDesiredLb> = {}): TDesiredLb {
  return {
    id: randomUUID(),
    name: 'web',
    algorithm: 'roundrobin',
    stickySeconds: null,
    drainSeconds: 1,
    listeners: [{ port, protocol: 'http', routes }],
    backends: Object.entries(backends).map(([name, servers]) => ({ name, servers })),
    ...extra,
  }
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 32 })
/**
 * A GET like browsers, Go's client and wrk do it: a request sent on a reused keep-alive
 * connection that the server closed before answering anything is sent again, once, on a new
 * connection (RFC 9112 §9.3.1; Node's documentation recommends the same for its agent).
 * Anything else that goes wrong is a failure. `retried` counts those second sends.
 */
let retried = 0
function get(port: number, p = '/', headers: Record<string, string> = {}, via = agent, retry = true): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, headers, agent: via }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d) => (body += d))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }))
    })
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (retry && req.reusedSocket && err.code === 'ECONNRESET') {
        retried++
        resolve(get(port, p, headers, via, false))
      } else reject(err)
    })
    req.setTimeout(5000, () => req.destroy(new Error('timeout')))
  })
}

/** Keep-alive clients hammering the LB until stop() (one connection each, like wrk); counts what failed. */
function load(port: number, clients = 16) {
  let running = true
  let ok = 0
  const failures: string[] = []
  const loops = Array.from({ length: clients }, async () => {
    const own = new http.Agent({ keepAlive: true, maxSockets: 1 })
    while (running) {
      try {
        const r = await get(port, '/', {}, own)
        if (r.status === 200) ok++
        else failures.push(`status ${r.status}: ${r.body.slice(0, 80)}`)
      } catch (err) {
        failures.push((err as Error).message)
      }
    }
    own.destroy()
  })
  return {
    /** Resolves once `n` more requests succeeded: traffic flowed through whatever just changed. */
    flowed(n = 20) {
      const from = ok
      return until(`${n} requests after the change`, async () => ok >= from + n || (failures.length > 0 && 'failed'), 60_000)
    },
    async stop() {
      running = false
      await Promise.all(loops)
      return { ok, failures }
    },
  }
}

async function until<T>(what: string, fn: () => Promise<T | false | null | undefined>, ms = 10_000): Promise<T> {
  const end = Date.now() + ms
  for (;;) {
    const v = await fn().catch(() => null)
    if (v) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

const planes: Array<{ name: string; skip: boolean; make(dir: string): LbPlane }> = [
  { name: 'haproxy', skip: !haveHaproxy, make: (dir) => createHaproxyPlane({ dir, logger: pino({ level: 'silent' }) }) },
  { name: 'builtin', skip: false, make: () => createBuiltinPlane({ logger: pino({ level: 'silent' }) }) },
]

let a: Backend, b: Backend, c: Backend
beforeAll(async () => {
  ;[a, b, c] = await Promise.all([backend('a'), backend('b'), backend('c')])
})
afterAll(async () => {
  await Promise.all([a, b, c].map((x) => x?.close()))
  agent.destroy()
})

describe.each(planes)('$name data plane', ({ name, skip, make }) => {
  let plane: LbPlane
  let dir: string
  afterEach(async () => {
    await plane?.stop()
    if (dir) await rm(dir, { recursive: true, force: true })
  })
  const setup = async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), `alveary-lb-${name}-`))
    plane = make(dir)
  }
  /** Applies and checks every load balancer is served (a listener that could not open fails here, not as a refused request later). */
  const served = async (lbs: TDesiredLb[]) => {
    const reports = await plane.apply(lbs)
    expect(reports.filter((r) => r.state !== 'active')).toEqual([])
  }

  it.skipIf(skip)('routes by host and path prefix, first match wins, 404 otherwise', async () => {
    await setup()
    const port = await freeListenerPort()
    const desired = lb(port, { api: [server(a)], shop: [server(b)], rest: [server(c)] }, [
      { host: null, pathPrefix: '/api', backend: 'api' },
      { host: 'shop.example.com', pathPrefix: null, backend: 'shop' },
      { host: '*.example.org', pathPrefix: '/', backend: 'rest' },
    ])
    expect(await plane.apply([desired])).toEqual([{ id: desired.id, state: 'active', message: null }])
    expect((await get(port, '/api/users', { host: 'shop.example.com' })).body).toMatch(/^a /)
    expect((await get(port, '/cart', { host: 'shop.example.com:8080' })).body).toMatch(/^b /)
    expect((await get(port, '/x', { host: 'www.example.org' })).body).toMatch(/^c /)
    expect((await get(port, '/x', { host: 'other.test' })).status).toBe(404)
  })

  it.skipIf(skip)('spreads by weight, drains and takes servers out without a reload', async () => {
    await setup()
    const port = await freeListenerPort()
    const base = lb(port, { all: [server(a), server(b)] }, [{ host: null, pathPrefix: null, backend: 'all' }])
    await served([base])
    const count = async (n: number) => {
      const seen: Record<string, number> = {}
      for (let i = 0; i < n; i++) {
        const who = (await get(port)).body.split(' ')[0]!
        seen[who] = (seen[who] ?? 0) + 1
      }
      return seen
    }
    const even = await count(40)
    expect(even.a).toBeGreaterThanOrEqual(15)
    expect(even.b).toBeGreaterThanOrEqual(15)
    await served([{ ...base, backends: [{ name: 'all', servers: [server(a, 'ready', 100), server(b, 'ready', 0)] }] }])
    expect(await count(20)).toEqual({ a: 20 })
    await served([{ ...base, backends: [{ name: 'all', servers: [server(a, 'drain'), server(b), server(c, 'down')] }] }])
    expect(await count(20)).toEqual({ b: 20 })
    // The member that was down comes back in place; the others leave.
    await served([{ ...base, backends: [{ name: 'all', servers: [server(c)] }] }])
    expect(await count(10)).toEqual({ c: 10 })
  })

  it.skipIf(skip)('counts requests per server', async () => {
    await setup()
    const port = await freeListenerPort()
    const desired = lb(port, { all: [server(a), server(b)] }, [{ host: null, pathPrefix: null, backend: 'all' }])
    await served([desired])
    for (let i = 0; i < 20; i++) expect((await get(port)).status).toBe(200)
    const stats = await plane.stats()
    const total = (id: string) => stats.filter((s) => s.instanceId === id).reduce((n, s) => n + s.total, 0)
    expect(stats.every((s) => s.lbId === desired.id)).toBe(true)
    expect(total(a.id) + total(b.id)).toBe(20)
    expect(total(a.id)).toBeGreaterThanOrEqual(5)
    expect(total(b.id)).toBeGreaterThanOrEqual(5)
  })

  it.skipIf(skip)('keeps a client on one instance with a cookie until its TTL', async () => {
    await setup()
    const port = await freeListenerPort()
    await served([lb(port, { all: [server(a), server(b), server(c)] }, [{ host: null, pathPrefix: null, backend: 'all' }], { stickySeconds: 2 })])
    const first = await get(port)
    const cookie = first.headers['set-cookie']?.[0]?.split(';')[0]
    expect(cookie).toMatch(/^ALVEARY_LB=/)
    const who = first.body.split(' ')[0]
    for (let i = 0; i < 12; i++) expect((await get(port, '/', { cookie: cookie! })).body.split(' ')[0]).toBe(who)
    // After the TTL the cookie no longer binds: the client is balanced again (and gets a new cookie).
    // HAProxy stores cookie dates with a 4-second resolution, hence the margin.
    await new Promise((r) => setTimeout(r, name === 'haproxy' ? 6_500 : 2_500))
    const later = new Set<string>()
    for (let i = 0; i < 12; i++) later.add((await get(port, '/', { cookie: cookie! })).body.split(' ')[0]!)
    expect(later.size).toBeGreaterThan(1)
  })

  it.skipIf(skip)('loses no request while membership changes and while it reloads, under load', async () => {
    await setup()
    const port = await freeListenerPort()
    const base = lb(port, { all: [server(a), server(b)] }, [{ host: null, pathPrefix: null, backend: 'all' }])
    await served([base])
    await until('serving', async () => (await get(port)).status === 200)
    retried = 0
    const gen = load(port)
    const states: TLbServer[][] = [
      [server(a), server(b), server(c)],
      [server(a, 'drain'), server(b), server(c)],
      [server(b), server(c)],
      [server(b, 'ready', 10), server(c, 'ready', 200)],
      [server(a), server(b, 'drain'), server(c)],
      [server(a), server(c)],
    ]
    // After each change, requests keep flowing through it (a condition, not a time: a busy
    // machine serves few per second, and a wall-clock window made the count a flake).
    for (const servers of states) {
      await served([{ ...base, backends: [{ name: 'all', servers }] }])
      await gen.flowed()
    }
    // Structural changes: a second listener, then a route; each is a reload for HAProxy.
    const second = await freeListenerPort()
    await served([{ ...base, listeners: [...base.listeners, { port: second, protocol: 'http', routes: [{ host: null, pathPrefix: null, backend: 'all' }] }], backends: [{ name: 'all', servers: [server(a), server(c)] }] }])
    await gen.flowed()
    await served([{ ...base, listeners: [{ port, protocol: 'http', routes: [{ host: null, pathPrefix: '/', backend: 'all' }] }], backends: [{ name: 'all', servers: [server(a), server(b), server(c)] }] }])
    await gen.flowed()
    const { failures } = await gen.stop()
    expect(failures).toEqual([])
    // Not even a keep-alive connection closed under a request (HAProxy's idle-close-on-response).
    expect(retried).toBe(0)
  }, 120_000)

  it.skipIf(skip)('sends idempotent requests an instance closed without answering to another when asked (the built-in proxy always), never a POST twice', async () => {
    await setup()
    // An instance that takes each request and closes the connection without a word (a crash, a keep-alive race).
    let closed = 0
    const closer = http.createServer((req) => {
      closed++
      req.socket.destroy()
    })
    await new Promise<void>((r) => closer.listen(0, '127.0.0.1', r))
    try {
      const port = await freeListenerPort()
      const mute: TLbServer = { id: randomUUID(), address: '127.0.0.1', port: (closer.address() as AddressInfo).port, weight: 100, state: 'ready' }
      const base = lb(port, { all: [mute, server(a)] }, [{ host: null, pathPrefix: null, backend: 'all' }])
      const once = new http.Agent({ keepAlive: false })
      const send = (method: string) =>
        new Promise<number>((resolve, reject) => {
          const req = http.request({ host: '127.0.0.1', port, path: '/', method, agent: once }, (res) => {
            res.resume()
            res.on('end', () => resolve(res.statusCode ?? 0))
          })
          req.on('error', reject)
          req.end()
        })
      const statuses = async (method: string, n: number) => {
        const out: number[] = []
        for (let i = 0; i < n; i++) out.push(await send(method))
        return out
      }
      if (name === 'haproxy') {
        await served([base])
        // HAProxy's default: what reached the instance is not sent again.
        expect((await statuses('GET', 6)).filter((s) => s === 502).length).toBeGreaterThan(0)
      }
      await served([{ ...base, retryUnanswered: true }])
      expect(await statuses('GET', 6)).toEqual([200, 200, 200, 200, 200, 200])
      closed = 0
      const posts = await statuses('POST', 6)
      expect(posts.filter((s) => s === 502).length).toBeGreaterThan(0)
      // Each POST the mute instance took failed there and went nowhere else.
      expect(posts.filter((s) => s === 502).length).toBe(closed)
    } finally {
      closer.close()
    }
  })

  // HAProxy's own: its runtime API and reloads (the built-in plane has neither).
  if (name === 'haproxy')
    it.skipIf(skip)('reloads when the runtime API refuses a change, and says so when the configuration cannot load', async () => {
      await setup()
      const port = await freeListenerPort()
      const base = lb(port, { all: [server(a), server(b)] }, [{ host: null, pathPrefix: null, backend: 'all' }])
      await served([base])
      // Same structure, a server HAProxy cannot take: refused at run time, then by the reload.
      const bad = await plane.apply([{ ...base, backends: [{ name: 'all', servers: [server(a), { ...server(c), address: '256.0.0.1' }] }] }])
      expect(bad[0]).toMatchObject({ state: 'error', message: expect.stringMatching(/reload failed|did not start/) })
      // The previous worker kept serving; a good state comes back in full.
      expect((await get(port)).status).toBe(200)
      expect(await plane.apply([{ ...base, backends: [{ name: 'all', servers: [server(c)] }] }])).toEqual([{ id: base.id, state: 'active', message: null }])
      await until('c serves', async () => (await get(port)).body.startsWith('c '))
      for (let i = 0; i < 6; i++) expect((await get(port)).body).toMatch(/^c /)
    }, 60_000)

  it.skipIf(skip)('stops serving a load balancer that is gone, the last one too', async () => {
    await setup()
    const port = await freeListenerPort()
    await served([lb(port, { all: [server(a)] }, [{ host: null, pathPrefix: null, backend: 'all' }])])
    expect((await get(port)).body).toMatch(/^a /)
    expect(await plane.apply([])).toEqual([])
    await until('refused', async () => get(port, '/', {}, new http.Agent({ keepAlive: false }), false).then(() => false, () => true))
  })

  it.skipIf(skip)('reports a listener port that something else holds, and serves the others', async () => {
    await setup()
    const [taken, free] = [await freeListenerPort(), await freeListenerPort()]
    const blocker = http.createServer()
    await new Promise<void>((r) => blocker.listen(taken, '0.0.0.0', r))
    try {
      const bad = lb(taken, { all: [server(a)] }, [{ host: null, pathPrefix: null, backend: 'all' }])
      const good = lb(free, { all: [server(b)] }, [{ host: null, pathPrefix: null, backend: 'all' }])
      const reports = await plane.apply([bad, good])
      expect(reports).toContainEqual({ id: bad.id, state: 'error', message: `port ${taken} is in use on this node` })
      expect(reports).toContainEqual({ id: good.id, state: 'active', message: null })
      expect((await get(free)).body).toMatch(/^b /)
    } finally {
      blocker.close()
    }
  })
})

describe('haproxy probe', () => {
  it('says what is missing', async () => {
    expect(await probeHaproxy('/nonexistent/haproxy')).toMatchObject({ ok: false })
    if (haveHaproxy) expect(await probeHaproxy()).toMatchObject({ ok: true })
  })
})
