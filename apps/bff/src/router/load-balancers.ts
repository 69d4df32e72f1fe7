import { ZCreateLbInput, ZLbSettings, ZLoadBalancer } from '@alveary/core'
import { z } from 'zod'
import { operatorProcedure, router, tenantProcedure } from '../trpc'

const ZLbRef = z.object({ lbId: z.string().uuid() })
const ok = z.object({ ok: z.literal(true) })

export const loadBalancersRouter = router({
  list: tenantProcedure.output(z.array(ZLoadBalancer)).query(({ ctx, input }) => ctx.core.loadBalancers.list(ctx.actor, input.tenantId)),
  get: tenantProcedure.input(ZLbRef).output(ZLoadBalancer).query(({ ctx, input }) => ctx.core.loadBalancers.get(ctx.actor, input.tenantId, input.lbId)),
  create: tenantProcedure
    .input(ZCreateLbInput)
    .output(ZLoadBalancer)
    .mutation(({ ctx, input: { tenantId, ...lb } }) => ctx.core.loadBalancers.create(ctx.actor, tenantId, lb)),
  update: tenantProcedure
    .input(ZLbRef.and(ZLbSettings))
    .output(ZLoadBalancer)
    .mutation(({ ctx, input: { tenantId, lbId, ...settings } }) => ctx.core.loadBalancers.update(ctx.actor, tenantId, lbId, settings)),
  delete: tenantProcedure
    .input(ZLbRef)
    .output(ok)
    .mutation(async ({ ctx, input }) => {
      await ctx.core.loadBalancers.delete(ctx.actor, input.tenantId, input.lbId)
      return { ok: true as const }
    }),
  /** Operators: mark a node for load balancing (or not). */
  setNode: operatorProcedure
    .input(z.object({ nodeId: z.string().uuid(), enabled: z.boolean() }))
    .output(ok)
    .mutation(async ({ ctx, input }) => {
      await ctx.core.loadBalancers.setNodeLoadBalancing(ctx.actor, input.nodeId, input.enabled)
      return { ok: true as const }
    }),
})
