import type http from 'node:http'
import type { Logger } from 'pino'
import { createOpenApiNodeHttpHandler } from 'trpc-to-openapi'
import { contextFor, type ContextDeps, API_LIMITS } from '../http/trpc-handler'
import { currentRequestId } from '../http/request-id'
import { appRouter } from '../router'
import { isUnexpected, type Meta } from '../trpc'
import { exportAudit } from './audit-export'
import { serveDocs } from './docs'
import { etagOf } from './etag'
import { openApiDocument, restMetaByPath } from './openapi'
import { restErrorStatus, retryAfterOf } from './status'
import { createQueryTyper, pinCoercion } from './strict-input'

export const REST_BASE = '/api/v1'

const locationOf = (kind: NonNullable<NonNullable<Meta['rest']>['location']>, path: string, data: unknown) => {
  if (kind === 'self') return REST_BASE + path
  if (kind === 'parent') return REST_BASE + path.replace(/\/[^/]+$/, '')
  const id = (data as { id?: unknown } | null)?.id
  return typeof id === 'string' ? `${REST_BASE}${path}/${id}` : undefined
}

const nextCursorOf = (data: unknown): string | undefined => {
  if (Array.isArray(data)) {
    const id = (data[data.length - 1] as { id?: unknown } | undefined)?.id
    return typeof id === 'string' ? id : undefined
  }
  const next = (data as { nextCursor?: unknown } | null)?.nextCursor
  return typeof next === 'string' ? next : undefined
}

/**
 * /api/v1: the REST API, the same procedures as /trpc (same schemas, checks, audit trail)
 * routed by their `openapi` meta through trpc-to-openapi; /api/v1/openapi.json describes it,
 * /api/v1/docs/ shows it (Swagger UI); /api/v1/audit/export streams the audit trail as JSON lines.
 */
export function createRestHandler(deps: ContextDeps & { log: Logger; version: string }) {
  const metas = restMetaByPath()
  const restOf = (paths: readonly string[] | undefined) => (paths?.[0] ? metas.get(paths[0])?.rest : undefined)
  let document: string | null = null
  // Before the adapter first touches the schemas: REST and tRPC validate alike (strict-input.ts).
  pinCoercion(appRouter)
  const typeQuery = createQueryTyper(appRouter)

  const procedures = createOpenApiNodeHttpHandler({
    router: appRouter,
    maxBodySize: API_LIMITS.maxBodyBytes,
    createContext: ({ req, res }) => contextFor(deps, req, res as http.ServerResponse, 'rest'),
    responseMeta({ paths, data, errors, info }) {
      const error = errors[0]
      if (error) {
        const retryAfter = retryAfterOf(error)
        return { status: restErrorStatus(error), headers: retryAfter ? { 'retry-after': String(retryAfter) } : {} }
      }
      const rest = restOf(paths)
      const value = data[0]
      const path = info?.url?.pathname ?? ''
      const location = rest?.location && locationOf(rest.location, path, value)
      const cursor = rest?.cursor && nextCursorOf(value)
      return {
        status: rest?.status ?? 200,
        headers: {
          ...(rest?.etag && { etag: etagOf(rest.etag(value)) }),
          ...(location && { location }),
          ...(cursor && { 'x-next-cursor': cursor }),
        },
      }
    },
    onError({ error, path }) {
      if (isUnexpected(error)) deps.log.error({ requestId: currentRequestId(), path, err: error.message, stack: error.cause?.stack ?? error.stack }, 'REST call failed')
    },
  })

  return async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://localhost')
    if (url.pathname === `${REST_BASE}/openapi.json` && req.method === 'GET') {
      document ??= JSON.stringify(openApiDocument(deps.version))
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-cache' })
      return res.end(document)
    }
    if (url.pathname === `${REST_BASE}/audit/export` && req.method === 'GET') return exportAudit(deps.core, req, res, url)
    if ((url.pathname === `${REST_BASE}/docs` || url.pathname.startsWith(`${REST_BASE}/docs/`)) && req.method === 'GET' && (await serveDocs(REST_BASE, url.pathname, res))) return
    // The procedures' paths are relative to the base.
    req.url = (req.url ?? '/').slice(REST_BASE.length) || '/'
    typeQuery(req, url, url.pathname.slice(REST_BASE.length))
    return procedures(req, res)
  }
}
