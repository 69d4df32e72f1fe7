import type { Actor, ChangeBus, ControlPlane } from '@alveary/core'
import { CoreError, roleIn } from '@alveary/core'
import { initTRPC, TRPCError } from '@trpc/server'
import superjson from 'superjson'
import { z, ZodError } from 'zod'

export interface Context {
  core: ControlPlane
  bus: ChangeBus
  actor: Actor | null
  /** The session or API token the request came with. */
  token: string | null
  setSessionCookie(token: string, expiresAt: Date): void
  clearSessionCookie(): void
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
}

const t = initTRPC.context<Context>().create({
  transformer: superjson,
  // Keeps idle subscription streams alive through proxies.
  sse: { ping: { enabled: true, intervalMs: 15_000 } },
  errorFormatter({ shape, error }) {
    const cause = error.cause
    return {
      ...shape,
      data: {
        ...shape.data,
        stack: undefined,
        coreCode: cause instanceof CoreError ? cause.code : null,
        fieldErrors: cause instanceof ZodError ? z.flattenError(cause).fieldErrors : null,
      },
    }
  },
})

/** Maps typed domain errors to tRPC errors in one place. */
const mapErrors = t.middleware(async ({ next }) => {
  const res = await next()
  if (!res.ok && res.error.cause instanceof CoreError) {
    throw new TRPCError({ code: CODE_MAP[res.error.cause.code], message: res.error.cause.message, cause: res.error.cause })
  }
  return res
})

const timed = t.middleware(async ({ ctx, path, type, next }) => {
  if (type === 'subscription' || !ctx.observeProcedure) return next()
  const start = performance.now()
  const res = await next()
  ctx.observeProcedure(path, type, (performance.now() - start) / 1000, res.ok ? 'OK' : res.error.code)
  return res
})

export const router = t.router
export const createCallerFactory = t.createCallerFactory
export const publicProcedure = t.procedure.use(timed).use(mapErrors)

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
