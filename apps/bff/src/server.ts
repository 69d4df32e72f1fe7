import http from 'node:http'
import type { ChangeBus, ControlPlane, Database } from '@alveary/core'
import type { Logger } from 'pino'
import { createAgentGateway } from './gateway'
import { compileTrust } from './http/client'
import { withRequestId } from './http/request-id'
import { createRestHandler, REST_BASE } from './rest'
import { createTrpcHandler, crossSiteRefusal, type SecureCookies } from './http/trpc-handler'
import type { Metrics } from './metrics'

export interface BffServerDeps {
  core: ControlPlane
  bus: ChangeBus
  database: Database
  log: Logger
  heartbeatIntervalMs: number
  agents: { helloTimeoutMs: number; maxPendingPerIp: number; maxConcurrentHellos: number; helloQueue: number }
  /** Proxies whose X-Forwarded-* headers are believed (see http/client.ts). */
  trustProxy: string
  /** Secure session cookies: always, never, or when the request came over HTTPS. */
  secureCookies: SecureCookies
  metrics: Metrics
}

/** An error answer in tRPC's envelope (superjson), so API clients show its message. */
function sendError(res: http.ServerResponse, status: number, code: string, message: string, requestId: string) {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(JSON.stringify({ error: { json: { message, code: -32600, data: { code, httpStatus: status, requestId } } } }))
}

const API_VERSION = '1.0.0'
/**
 * Idle keep-alive connections stay open longer than clients and load balancers keep theirs
 * (undici 4 s, browsers and most proxies ~60 s): the client closes first, so a request sent on
 * an idle connection never meets the server's close (Node's 5 s default: resets under load).
 */
const KEEP_ALIVE_MS = 65_000

/** One HTTP server: /trpc (API + SSE subscriptions), /api/v1 (REST + OpenAPI), /agent (WebSocket), /healthz. */
export function createBffServer({ core, bus, database, log, heartbeatIntervalMs, agents, trustProxy, secureCookies, metrics }: BffServerDeps) {
  const gateway = createAgentGateway({ core, bus, log, heartbeatIntervalMs, ...agents })
  metrics.watch({ gateway, bus, controlPlane: core })
  const api = { core, bus, log, trust: compileTrust(trustProxy), secureCookies, observeProcedure: metrics.observeProcedure }
  const trpc = createTrpcHandler(api)
  const rest = createRestHandler({ ...api, version: API_VERSION })

  const server = http.createServer((req, res) =>
    withRequestId(async (requestId) => {
      res.setHeader('x-request-id', requestId)
      const url = req.url ?? '/'
      if (url.startsWith('/trpc/')) {
        const refusal = crossSiteRefusal(req)
        if (refusal) return sendError(res, 415, 'UNSUPPORTED_MEDIA_TYPE', refusal, requestId)
        return trpc(req, res)
      }
      if (url.startsWith(`${REST_BASE}/`)) return rest(req, res)
      if (url === '/healthz') {
        let dbOk = true
        let readyNodes = 0
        try {
          readyNodes = await database.hot.nodeStatus.count({ where: { state: 'ready' } })
        } catch {
          dbOk = false
        }
        // Without the change bus this BFF misses other processes' changes (agents' desired state among them).
        const b = bus.health()
        const ok = dbOk && b.connected
        res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' })
        res.end(
          JSON.stringify({
            status: ok ? 'ok' : 'degraded',
            database: dbOk ? 'ok' : 'unreachable',
            changeBus: { state: b.connected ? 'listening' : 'reconnecting', since: b.since, failedAttempts: b.failedAttempts, reconnects: b.reconnects },
            readyNodes,
            connectedAgents: gateway.connected,
          }),
        )
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
    }).catch((err: Error) => {
      log.error({ err: err.message, stack: err.stack }, 'request failed')
      if (!res.headersSent) sendError(res, 500, 'INTERNAL_SERVER_ERROR', 'Internal error', String(res.getHeader('x-request-id')))
      else res.destroy()
    }),
  )
  server.keepAliveTimeout = KEEP_ALIVE_MS
  server.headersTimeout = KEEP_ALIVE_MS + 1000
  server.on('upgrade', (req, socket, head) => {
    if (req.url?.split('?')[0] === '/agent') gateway.handleUpgrade(req, socket, head)
    else socket.destroy()
  })
  // Unparseable requests (bad request line, oversized headers) get a status line, not a reset.
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (err.code === 'ECONNRESET' || !socket.writable) return socket.destroy()
    socket.end(err.code === 'HPE_HEADER_OVERFLOW' ? 'HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n\r\n' : 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n')
  })

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
