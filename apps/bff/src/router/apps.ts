import { ZAppDetail, ZAppSummary, ZCreateAppInput, ZCursor, ZEvent, ZReplicas, ZRevision, ZRollout, ZUpdateAppInput } from '@alveary/core'
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
  update: tenantProcedure
    .input(ZAppRef.and(ZUpdateAppInput))
    .output(ZAppSummary)
    .mutation(({ ctx, input: { tenantId, appId, ...update } }) => ctx.core.apps.update(ctx.actor, tenantId, appId, update)),
  rollback: tenantProcedure
    .input(ZAppRef.extend({ revision: z.number().int().min(1).max(1_000_000) }))
    .output(ZAppSummary)
    .mutation(({ ctx, input }) => ctx.core.apps.rollback(ctx.actor, input.tenantId, input.appId, input.revision)),
  revisions: tenantProcedure.input(ZAppRef).output(z.array(ZRevision)).query(({ ctx, input }) => ctx.core.apps.revisions(ctx.actor, input.tenantId, input.appId)),
  rollouts: tenantProcedure.input(ZAppRef).output(z.array(ZRollout)).query(({ ctx, input }) => ctx.core.apps.rollouts(ctx.actor, input.tenantId, input.appId)),
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
    .input(z.object({ limit: z.number().int().min(1).max(500).default(100), beforeId: ZCursor.optional() }))
    .output(z.array(ZEvent))
    .query(({ ctx, input }) => ctx.core.events.list(ctx.actor, input.tenantId, input)),
})
