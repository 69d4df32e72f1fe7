/**
 * The built-in data plane: a Node proxy for nodes without HAProxy (development machines,
 * `npm start`). Same semantics, lower throughput: host/path routing, weighted round robin
 * or least connections, cookie stickiness with a lifetime, drain (sticky clients only) and
 * down servers; a failed connection is retried on another server. Routing tables are
 * swapped atomically, so membership and structure change without dropping requests.
 */
import http from 'node:http'
import net from 'node:net'
import type { Logger } from 'pino'
import type { TDesiredLb, TLbReport, TLbServer } from '@alveary/core/protocol'
import { portsInUse } from '../ports'
import type { LbPlane } from '../types'
import { createPicker, type Picker } from './pick'

const COOKIE = 'ALVEARY_LB'

interface Route {
  host: string | null
  pathPrefix: string | null
  picker: Picker
}
interface Listener {
  port: number
  protocol: 'http' | 'tcp'
  server: http.Server | net.Server
  routes: Route[]
  stickySeconds: number | null
}

const hostMatches = (pattern: string, host: string) => (pattern.startsWith('*.') ? host.endsWith(pattern.slice(1)) : host === pattern)

export function createBuiltinPlane({ logger }: { logger: Logger }): LbPlane {
  const listeners = new Map<number, Listener>()
  /** Pickers by load balancer and backend: their connection counts and rotation survive applies. */
  let pickers = new Map<string, Picker>()
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 })
  let chain: Promise<unknown> = Promise.resolve()

  function routeFor(l: Listener, req: http.IncomingMessage): Route | undefined {
    const host = (req.headers.host ?? '').split(':')[0]!.toLowerCase()
    const p = req.url ?? '/'
    return l.routes.find((r) => (!r.host || hostMatches(r.host, host)) && (!r.pathPrefix || p.startsWith(r.pathPrefix)))
  }

  function stickyTarget(req: http.IncomingMessage, picker: Picker): TLbServer | null {
    const m = new RegExp(`(?:^|;\\s*)${COOKIE}=([0-9a-f-]{36})\\.(\\d+)`).exec(req.headers.cookie ?? '')
    if (!m || Number(m[2]) < Date.now()) return null
    return picker.byId(m[1]!)
  }

  function handleHttp(l: Listener, req: http.IncomingMessage, res: http.ServerResponse) {
    const route = routeFor(l, req)
    if (!route) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('no route for this host and path\n')
      return
    }
    const sticky = l.stickySeconds ? stickyTarget(req, route.picker) : null
    const tried = new Set<string>()
    const attempt = (retries: number) => {
      const target = (!tried.size && sticky) || route.picker.pick(tried)
      if (!target) {
        res.writeHead(503, { 'content-type': 'text/plain' }).end('no server available\n')
        return
      }
      tried.add(target.id)
      const release = route.picker.acquire(target.id)
      const headers = { ...req.headers, 'x-forwarded-for': req.socket.remoteAddress ?? '' }
      const up = http.request({ host: target.address, port: target.port, method: req.method, path: req.url, headers, agent }, (upRes) => {
        const out = { ...upRes.headers }
        if (l.stickySeconds && target.id !== sticky?.id) {
          const cookie = `${COOKIE}=${target.id}.${Date.now() + l.stickySeconds * 1000}; Path=/; HttpOnly`
          out['set-cookie'] = [...(upRes.headers['set-cookie'] ?? []), cookie]
        }
        res.writeHead(upRes.statusCode ?? 502, out)
        upRes.pipe(res)
        upRes.on('end', release)
        upRes.on('error', release)
      })
      let sent = false
      up.on('socket', (s) => s.once('connect', () => (sent = true)))
      up.on('error', (err) => {
        release()
        // Nothing reached the server (refused, or a reused connection it had just closed): try another.
        const retryable = !res.headersSent && (!sent || (err as NodeJS.ErrnoException).code === 'ECONNRESET') && ['GET', 'HEAD', 'OPTIONS'].includes(req.method ?? '')
        if (retryable && retries > 0) return attempt(retries - 1)
        if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' }).end('bad gateway\n')
        else res.destroy()
      })
      req.pipe(up)
    }
    attempt(3)
  }

  function handleTcp(l: Listener, client: net.Socket) {
    const route = l.routes[0]
    const target = route?.picker.pick(new Set())
    if (!route || !target) return client.destroy()
    const release = route.picker.acquire(target.id)
    const up = net.connect({ host: target.address, port: target.port })
    client.pipe(up).pipe(client)
    const done = () => {
      release()
      client.destroy()
      up.destroy()
    }
    up.on('error', done)
    client.on('error', done)
    up.on('close', done)
    client.on('close', done)
  }

  async function listen(port: number, protocol: 'http' | 'tcp'): Promise<Listener> {
    const l: Listener = { port, protocol, routes: [], stickySeconds: null, server: null as unknown as net.Server }
    l.server =
      protocol === 'http'
        ? http.createServer({ keepAliveTimeout: 10_000 }, (req, res) => handleHttp(l, req, res))
        : net.createServer((sock) => handleTcp(l, sock))
    await new Promise<void>((resolve, reject) => {
      l.server.once('error', reject)
      l.server.listen(port, () => resolve())
    })
    return l
  }

  async function apply(lbs: readonly TDesiredLb[]): Promise<TLbReport[]> {
    const wanted = new Map(lbs.flatMap((lb) => lb.listeners.map((l) => [l.port, { lb, l }] as const)))
    for (const [port, l] of listeners)
      if (!wanted.has(port) || wanted.get(port)!.l.protocol !== l.protocol) {
        // Stops accepting; open connections finish.
        l.server.close()
        if (l.server instanceof http.Server) l.server.closeIdleConnections()
        listeners.delete(port)
      }
    const busy = await portsInUse([...wanted.keys()].filter((p) => !listeners.has(p)))
    const failed = new Map<string, string>()
    const nextPickers = new Map<string, Picker>()
    for (const lb of lbs)
      for (const b of lb.backends) {
        const key = `${lb.id}/${b.name}`
        const p = pickers.get(key) ?? createPicker(lb.algorithm)
        // It cannot open connections inside a tenant network (Node has no per-socket namespace):
        // such servers are down. The agent does not advertise lbNetworks, so none are sent here.
        p.update(b.servers.map((s) => (s.networkId ? { ...s, state: 'down' as const } : s)), lb.algorithm)
        nextPickers.set(key, p)
      }
    pickers = nextPickers
    for (const [port, { lb, l }] of wanted) {
      if (busy.has(port)) {
        failed.set(lb.id, `port ${port} is in use on this node`)
        continue
      }
      let live = listeners.get(port)
      if (!live) {
        try {
          live = await listen(port, l.protocol)
          listeners.set(port, live)
        } catch (err) {
          failed.set(lb.id, `cannot listen on port ${port}: ${(err as Error).message}`)
          continue
        }
      }
      live.stickySeconds = lb.stickySeconds
      live.routes = l.routes.map((r) => ({ host: r.host, pathPrefix: r.pathPrefix, picker: pickers.get(`${lb.id}/${r.backend}`) ?? createPicker(lb.algorithm) }))
    }
    if (failed.size) logger.warn({ failed: Object.fromEntries(failed) }, 'some load balancers cannot be served')
    return lbs.map((lb) => ({ id: lb.id, state: failed.has(lb.id) ? 'error' : 'active', message: failed.get(lb.id) ?? null }))
  }

  return {
    name: 'builtin',
    joinsNetworks: false,
    apply(lbs) {
      const run = chain.then(() => apply(lbs))
      chain = run.catch(() => {})
      return run
    },
    async stats() {
      return [...pickers].flatMap(([key, p]) => {
        const lbId = key.slice(0, key.indexOf('/'))
        return p.counts().map((c) => ({ lbId, instanceId: c.id, slot: key, current: c.current, total: c.total }))
      })
    },
    async stop() {
      await chain
      await Promise.all(
        [...listeners.values()].map(
          (l) =>
            new Promise<void>((r) => {
              if (l.server instanceof http.Server) l.server.closeAllConnections()
              l.server.close(() => r())
            }),
        ),
      )
      listeners.clear()
      agent.destroy()
    },
  }
}
