import http from 'node:http'
import type { ChangeBus, ControlPlane, Database } from '@alveary/core'
import { createHTTPHandler } from '@trpc/server/adapters/standalone'
import type { Logger } from 'pino'
import { createAgentGateway } from './gateway'
import type { Metrics } from './metrics'
import { appRouter } from './router'
import type { Context } from './trpc'

export const SESSION_COOKIE = 'alveary_session'

function readToken(req: http.IncomingMessage): string | null {
  const auth = req.headers.authorization
  if (auth?.startsWith('Bearer ')) return auth.slice(7).trim() || null
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=')
    if (k === SESSION_COOKIE) return decodeURIComponent(v.join('=')) || null
  }
  return null
}

export interface BffServerDeps {
  core: ControlPlane
  bus: ChangeBus
  database: Database
  log: Logger
  heartbeatIntervalMs: number
  agents: { helloTimeoutMs: number; maxPendingPerIp: number }
  /** Mark cookies Secure (behind HTTPS). */
  secureCookies: boolean
  metrics: Metrics
}

/** One HTTP server: /trpc (API + SSE subscriptions), /agent (WebSocket), /healthz. */
export function createBffServer({ core, bus, database, log, heartbeatIntervalMs, agents, secureCookies, metrics }: BffServerDeps) {
  const gateway = createAgentGateway({ core, bus, log, heartbeatIntervalMs, ...agents })
  metrics.watch({ gateway, bus, controlPlane: core })
  const cookie = (value: string, expires: Date) =>
    `${SESSION_COOKIE}=${encodeURIComponent(value)}; Path=/; HttpOnly; SameSite=Lax; Expires=${expires.toUTCString()}${secureCookies ? '; Secure' : ''}`

  const trpc = createHTTPHandler({
    router: appRouter,
    basePath: '/trpc/',
    async createContext({ req, res }): Promise<Context> {
      const token = readToken(req)
      const actor = token ? await core.auth.resolve(token) : null
      return {
        core,
        bus,
        actor,
        token,
        setSessionCookie: (t, expiresAt) => res.appendHeader('Set-Cookie', cookie(t, expiresAt)),
        clearSessionCookie: () => res.appendHeader('Set-Cookie', cookie('', new Date(0))),
        observeProcedure: metrics.observeProcedure,
      }
    },
    onError({ error, path }) {
      if (error.code === 'INTERNAL_SERVER_ERROR') log.error({ path, err: error.message, stack: error.cause?.stack }, 'procedure failed')
    },
  })

  const server = http.createServer(async (req, res) => {
    const url = req.url ?? '/'
    if (url.startsWith('/trpc/')) return trpc(req, res)
    if (url === '/healthz') {
      let dbOk = true
      let readyNodes = 0
      try {
        readyNodes = await database.hot.nodeStatus.count({ where: { state: 'ready' } })
      } catch {
        dbOk = false
      }
      res.writeHead(dbOk ? 200 : 503, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ status: dbOk ? 'ok' : 'degraded', database: dbOk ? 'ok' : 'unreachable', readyNodes, connectedAgents: gateway.connected }))
      return
    }
    if (url === '/metrics') {
      try {
        const text = await metrics.registry.metrics()
        res.writeHead(200, { 'content-type': metrics.registry.contentType })
        res.end(text)
      } catch (err) {
        log.error({ err: (err as Error).message }, 'metrics failed')
        res.writeHead(500, { 'content-type': 'text/plain' })
        res.end('metrics failed\n')
      }
      return
    }
    res.writeHead(404, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ error: 'not found' }))
  })
  server.on('upgrade', (req, socket, head) => {
    if (req.url?.split('?')[0] === '/agent') gateway.handleUpgrade(req, socket, head)
    else socket.destroy()
  })
  server.on('clientError', (_err, socket) => socket.destroy())

  return {
    server,
    listen: (port: number, host: string) => new Promise<number>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, host, () => resolve((server.address() as { port: number }).port))
    }),
    async close() {
      await gateway.close()
      server.closeAllConnections()
      await new Promise<void>((r) => server.close(() => r()))
    },
  }
}
