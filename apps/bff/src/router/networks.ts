import { ZCreateNetworkInput, ZNetwork, ZNetworkDetail } from '@alveary/core'
import { z } from 'zod'
import { router, tenantProcedure } from '../trpc'

const ZNetworkRef = z.object({ networkId: z.string().uuid() })

export const networksRouter = router({
  list: tenantProcedure.output(z.array(ZNetwork)).query(({ ctx, input }) => ctx.core.networks.list(ctx.actor, input.tenantId)),
  get: tenantProcedure.input(ZNetworkRef).output(ZNetworkDetail).query(({ ctx, input }) => ctx.core.networks.get(ctx.actor, input.tenantId, input.networkId)),
  create: tenantProcedure
    .input(ZCreateNetworkInput)
    .output(ZNetwork)
    .mutation(({ ctx, input: { tenantId, ...network } }) => ctx.core.networks.create(ctx.actor, tenantId, network)),
  delete: tenantProcedure
    .input(ZNetworkRef)
    .output(z.object({ ok: z.literal(true) }))
    .mutation(async ({ ctx, input }) => {
      await ctx.core.networks.delete(ctx.actor, input.tenantId, input.networkId)
      return { ok: true as const }
    }),
})
