import { ZAppDetail, ZAppSummary, ZCreateAppInput, ZEvent, ZReplicas } from '@alveary/core'
import { z } from 'zod'
import { router, tenantProcedure } from '../trpc'

const ZAppRef = z.object({ appId: z.string().uuid() })

export const appsRouter = router({
  list: tenantProcedure.output(z.array(ZAppSummary)).query(({ ctx, input }) => ctx.core.apps.list(ctx.actor, input.tenantId)),
  get: tenantProcedure.input(ZAppRef).output(ZAppDetail).query(({ ctx, input }) => ctx.core.apps.get(ctx.actor, input.tenantId, input.appId)),
  create: tenantProcedure
    .input(ZCreateAppInput)
    .output(ZAppSummary)
    .mutation(({ ctx, input: { tenantId, ...app } }) => ctx.core.apps.create(ctx.actor, tenantId, app)),
  scale: tenantProcedure
    .input(ZAppRef.extend({ replicas: ZReplicas }))
    .output(ZAppSummary)
    .mutation(({ ctx, input }) => ctx.core.apps.scale(ctx.actor, input.tenantId, input.appId, input.replicas)),
  delete: tenantProcedure
    .input(ZAppRef)
    .output(z.object({ ok: z.literal(true) }))
    .mutation(async ({ ctx, input }) => {
      await ctx.core.apps.delete(ctx.actor, input.tenantId, input.appId)
      return { ok: true as const }
    }),
})

export const eventsRouter = router({
  list: tenantProcedure
    .input(z.object({ limit: z.number().int().min(1).max(500).default(100), beforeId: z.string().regex(/^\d+$/).optional() }))
    .output(z.array(ZEvent))
    .query(({ ctx, input }) => ctx.core.events.list(ctx.actor, input.tenantId, input)),
})
