import type { Actor, ChangeBus, ControlPlane, Precondition } from '@alveary/core'
import { auditActor, auditTarget, CoreError, redactInput, roleIn, withAuditScope } from '@alveary/core'
import { initTRPC, TRPCError } from '@trpc/server'
import type { OpenApiMeta } from 'trpc-to-openapi'
import { etagOf, matchesEtag } from './rest/etag'
import superjson from 'superjson'
import { z, ZodError } from 'zod'
import { currentRequestId } from './http/request-id'

export interface Context {
  core: ControlPlane
  bus: ChangeBus
  actor: Actor | null
  /** The session or API token the request came with. */
  token: string | null
  /** The client's address (through trusted proxies), for per-address throttling. */
  clientAddress: string
  setSessionCookie(token: string, expiresAt: Date): void
  clearSessionCookie(): void
  /** Which door the request came through, for the audit trail (default trpc). */
  door?: 'trpc' | 'rest'
  userAgent?: string | null
  /** The REST request's If-Match header: updates that declare an ETag refuse a stale one (412). */
  ifMatch?: string | null
  /** Records each query's and mutation's duration for /metrics (contexts built by tests leave it out). */
  observeProcedure?(procedure: string, type: string, seconds: number, code: string): void
}

const CODE_MAP: Record<CoreError['code'], TRPCError['code']> = {
  UNAUTHORIZED: 'UNAUTHORIZED',
  FORBIDDEN: 'FORBIDDEN',
  NOT_FOUND: 'NOT_FOUND',
  BAD_REQUEST: 'BAD_REQUEST',
  CONFLICT: 'CONFLICT',
  QUOTA_EXCEEDED: 'PRECONDITION_FAILED',
  RATE_LIMITED: 'TOO_MANY_REQUESTS',
  PRECONDITION_FAILED: 'PRECONDITION_FAILED',
}

const toTRPCError = (err: CoreError) => new TRPCError({ code: CODE_MAP[err.code], message: err.message, cause: err })

/**
 * An error nobody meant to send: a bug, the database, a library. Clients get a generic
 * message with the request id; the details go to the log (see server.ts).
 */
export const isUnexpected = (error: TRPCError) => error.code === 'INTERNAL_SERVER_ERROR'

/**
 * What a procedure declares for the REST API (rest/): its route for trpc-to-openapi, and
 * `rest`: the success status (201 created, 202 accepted: work goes on after the answer),
 * where the result lives (Location), which cursor its list pages by, and how its ETag is
 * computed (GET answers carry it; updates with `ifMatch` check it).
 */
export interface RestMeta {
  status?: 201 | 202
  /** Location of the result, from the request path: `child` = path/<id of the result>, `self` = the path, `parent` = the path without its last segment. */
  location?: 'child' | 'self' | 'parent'
  /** The list pages by this input field; the answer's X-Next-Cursor is the last item's id. */
  cursor?: 'beforeId' | 'afterId'
  etag?: (data: unknown) => unknown
  /** The update honours If-Match (documents the header; the procedure passes `ifMatchOf(ctx)` to core). */
  ifMatch?: true
}
export type Meta = OpenApiMeta<{ rest?: RestMeta }>

const t = initTRPC.context<Context>().meta<Meta>().create({
  transformer: superjson,
  // Keeps idle subscription streams alive through proxies.
  sse: { ping: { enabled: true, intervalMs: 15_000 } },
  errorFormatter({ shape, error, ctx }) {
    const cause = error.cause
    const requestId = currentRequestId()
    const rest = ctx?.door === 'rest'
    return {
      ...shape,
      message: isUnexpected(error) ? `Internal error. Request id: ${requestId ?? 'none'} (the details are in the server log)` : shape.message,
      data: {
        code: shape.data.code,
        // REST answers carry their own status (rest/status.ts), not tRPC's.
        ...(!rest && { httpStatus: shape.data.httpStatus, path: shape.data.path }),
        requestId,
        coreCode: cause instanceof CoreError ? cause.code : null,
        retryAfterSeconds: cause instanceof CoreError ? (cause.retryAfterSeconds ?? null) : null,
        fieldErrors: cause instanceof ZodError ? z.flattenError(cause).fieldErrors : null,
      },
    }
  },
})

/** Errors thrown while a subscription streams (after the response started) get the same mapping. */
async function* mapStreamErrors(source: AsyncIterable<unknown>): AsyncGenerator<unknown> {
  try {
    yield* source
  } catch (err) {
    throw err instanceof CoreError ? toTRPCError(err) : err
  }
}

const isAsyncIterable = (v: unknown): v is AsyncIterable<unknown> => v !== null && typeof v === 'object' && Symbol.asyncIterator in v

/** Maps typed domain errors to tRPC errors in one place, for queries, mutations and subscriptions. */
const mapErrors = t.middleware(async ({ next, type }) => {
  const res = await next()
  if (!res.ok && res.error.cause instanceof CoreError) throw toTRPCError(res.error.cause)
  if (res.ok && type === 'subscription' && isAsyncIterable(res.data)) return { ...res, data: mapStreamErrors(res.data) }
  return res
})

const timed = t.middleware(async ({ ctx, path, type, next }) => {
  if (type === 'subscription' || !ctx.observeProcedure) return next()
  const start = performance.now()
  const res = await next()
  ctx.observeProcedure(path, type, (performance.now() - start) / 1000, res.ok ? 'OK' : res.error.code)
  return res
})

const isUuid = (v: unknown): v is string => typeof v === 'string' && z.uuid().safeParse(v).success

/**
 * The audit trail's one place for the API: every mutation, through the console (tRPC) or the
 * REST API (the same procedures), writes one row with who, from where, what, the services'
 * own before → after messages, and the result, failures included. Calls without any
 * credential that are refused as such (anyone can send them) leave no row, except sign-in.
 * A row that cannot be written fails the request: no unaudited success is reported.
 */
const audited = t.middleware(async ({ ctx, path, type, getRawInput, next }) => {
  if (type !== 'mutation') return next()
  const { summary, result } = await withAuditScope(() => next())
  // next() reports errors as results; a rejection here is a bug below and is passed on as is.
  if (result.status === 'rejected') throw result.reason
  const res = result.value
  if (!ctx.actor && !res.ok && res.error.code === 'UNAUTHORIZED' && path !== 'auth.login') return res
  const raw = await getRawInput().catch(() => undefined)
  const input = raw && typeof raw === 'object' ? (raw as Record<string, unknown>) : {}
  const cause = res.ok ? null : res.error.cause
  // A call into a tenant the caller has no role in lands in the platform's rows, not that tenant's.
  const tenantId = isUuid(input['tenantId']) && ctx.actor && roleIn(ctx.actor, input['tenantId']) ? input['tenantId'] : null
  await ctx.core.audit.record({
    tenantId,
    ...auditActor(ctx.actor),
    ...(!ctx.actor && path === 'auth.login' && typeof input['email'] === 'string' && { actorEmail: input['email'] }),
    sourceIp: ctx.clientAddress,
    userAgent: ctx.userAgent?.slice(0, 200) ?? null,
    door: ctx.door ?? 'trpc',
    action: path,
    target: auditTarget(path, input),
    request: redactInput(input) as Record<string, unknown>,
    summary: summary.join('\n'),
    result: res.ok ? 'ok' : cause instanceof CoreError ? cause.code : res.error.code,
    error: res.ok ? null : isUnexpected(res.error) ? 'internal error' : res.error.message.slice(0, 1000),
    requestId: currentRequestId() ?? null,
  })
  return res
})

// NUL, or a UTF-16 surrogate without its pair.
const BAD_TEXT = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

function hasBadText(v: unknown, depth = 0): boolean {
  if (typeof v === 'string') return BAD_TEXT.test(v)
  if (!v || typeof v !== 'object' || depth > 64) return false
  const entries = v instanceof Map ? [...v.entries()].flat() : v instanceof Set ? [...v] : Array.isArray(v) ? v : Object.entries(v).flat()
  return entries.some((x) => hasBadText(x, depth + 1))
}

/**
 * PostgreSQL text and JSON hold neither NUL characters nor lone UTF-16 surrogates: refuse
 * them in every input string (and key) of every procedure up front, instead of failing
 * deep in a write.
 */
const refuseBadText = t.middleware(async ({ getRawInput, next }) => {
  const raw = await getRawInput().catch(() => undefined) // unreadable input: the input parser says why
  if (hasBadText(raw)) throw new TRPCError({ code: 'BAD_REQUEST', message: 'Text must be valid Unicode without NUL characters' })
  return next()
})

export const router = t.router
export const createCallerFactory = t.createCallerFactory
export const publicProcedure = t.procedure.use(timed).use(audited).use(mapErrors).use(refuseBadText)

export const authedProcedure = publicProcedure.use(({ ctx, next }) => {
  if (!ctx.actor) throw new TRPCError({ code: 'UNAUTHORIZED', message: 'Log in first' })
  return next({ ctx: { ...ctx, actor: ctx.actor } })
})

/**
 * Tenant-scoped: input carries tenantId and the caller must hold a role in it. Core checks
 * the exact role again on every call; this gate also covers subscriptions, whose bodies
 * run after the response has started.
 */
export const ZTenantInput = z.object({ tenantId: z.string().uuid() })
export const tenantProcedure = authedProcedure.input(ZTenantInput).use(({ ctx, input, next }) => {
  if (!roleIn(ctx.actor, input.tenantId)) throw new TRPCError({ code: 'NOT_FOUND', message: 'Tenant not found' })
  return next()
})

export const operatorProcedure = authedProcedure.use(({ ctx, next }) => {
  if (!ctx.actor.operator) throw new TRPCError({ code: 'FORBIDDEN', message: 'Only platform operators can do this' })
  return next()
})

/**
 * Lost-update guard for REST updates: the request's If-Match as a core precondition. Core
 * checks it against the resource's version inside the write's transaction, with the row
 * locked, so of two updates sent with the same ETag exactly one goes ahead (the other: 412).
 * No header: the update is unconditional.
 */
export function ifMatchOf<V>(ctx: Context): Precondition<V> | undefined {
  const header = ctx.ifMatch
  return header ? (current: V) => matchesEtag(header, etagOf(current)) : undefined
}
