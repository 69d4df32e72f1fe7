import type http from 'node:http'
import type { ChangeBus, ControlPlane } from '@alveary/core'
import { CoreError } from '@alveary/core'
import { createHTTPHandler } from '@trpc/server/adapters/standalone'
import { stringifySetCookie } from 'cookie'
import type { Logger } from 'pino'
import { appRouter } from '../router'
import { isUnexpected, type Context } from '../trpc'
import { clientInfo, requestToken, SESSION_COOKIE } from './client'
import { currentRequestId } from './request-id'

/** Limits of one API request (the console's batch link stays below them). */
export const API_LIMITS = { maxBodyBytes: 1024 * 1024, maxBatchCalls: 32 }

export type SecureCookies = 'auto' | 'always' | 'never'

export interface TrpcHandlerDeps {
  core: ControlPlane
  bus: ChangeBus
  log: Logger
  trust: (addr: string, hop: number) => boolean
  secureCookies: SecureCookies
  observeProcedure: Context['observeProcedure']
}

export type ContextDeps = Omit<TrpcHandlerDeps, 'log'>

/** The context of one API request, for either door (tRPC or REST): who is calling, from where. */
export async function contextFor(deps: ContextDeps, req: http.IncomingMessage, res: http.ServerResponse, door: 'trpc' | 'rest'): Promise<Context> {
  const { core, bus, trust, secureCookies, observeProcedure } = deps
  const client = clientInfo(req, trust)
  const secure = secureCookies === 'always' || (secureCookies === 'auto' && client.secure)
  const cookie = (value: string, expires: Date) => stringifySetCookie({ name: SESSION_COOKIE, value, path: '/', httpOnly: true, sameSite: 'lax', expires, secure })
  const token = requestToken(req)
  return {
    core,
    bus,
    actor: token ? await core.auth.resolve(token) : null,
    token,
    clientAddress: client.address,
    door,
    userAgent: req.headers['user-agent'] ?? null,
    ifMatch: door === 'rest' ? (req.headers['if-match'] ?? null) : null,
    setSessionCookie: (t, expiresAt) => res.appendHeader('Set-Cookie', cookie(t, expiresAt)),
    clearSessionCookie: () => res.appendHeader('Set-Cookie', cookie('', new Date(0))),
    observeProcedure,
  }
}

/**
 * /trpc: the API and its subscriptions (SSE). Bodies and batches are capped, mutations must
 * look like our own client's (see `crossSiteRefusal`), unexpected errors are logged here
 * with the request id while the client gets a generic message (trpc.ts).
 */
export function createTrpcHandler(deps: TrpcHandlerDeps) {
  const { log } = deps
  return createHTTPHandler({
    router: appRouter,
    basePath: '/trpc/',
    maxBodySize: API_LIMITS.maxBodyBytes,
    maxBatchSize: API_LIMITS.maxBatchCalls,
    createContext: ({ req, res }) => contextFor(deps, req, res, 'trpc'),
    responseMeta({ errors }) {
      const waits = errors.map((e) => (e.cause instanceof CoreError ? (e.cause.retryAfterSeconds ?? 0) : 0))
      const retryAfter = Math.max(0, ...waits)
      return retryAfter ? { headers: { 'retry-after': String(retryAfter) } } : {}
    },
    onError({ error, path }) {
      if (isUnexpected(error)) log.error({ requestId: currentRequestId(), path, err: error.message, stack: error.cause?.stack ?? error.stack }, 'procedure failed')
    },
  })
}

/**
 * CSRF: a browser sends a cross-site request without a preflight only as a "simple" request
 * (form or text/plain bodies, no custom headers). Every POST must therefore carry the JSON
 * content type of our tRPC client, or the `X-Alveary-CSRF` header; anything else is refused
 * before it is parsed. GETs (queries, subscriptions) change nothing.
 */
export function crossSiteRefusal(req: http.IncomingMessage): string | null {
  if (req.method !== 'POST') return null
  const type = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase()
  if (type === 'application/json' || req.headers['x-alveary-csrf'] !== undefined) return null
  return 'API calls that change something must be sent as application/json (or with an X-Alveary-CSRF header)'
}
