import { ZCreateNetworkInput, ZNetwork, ZNetworkDetail } from '@alveary/core'
import { z } from 'zod'
import { router, tenantProcedure } from '../trpc'

const ZNetworkRef = z.object({ networkId: z.string().uuid() })

export const networksRouter = router({
  list: tenantProcedure
    .meta({ openapi: { method: 'GET', path: '/tenants/{tenantId}/networks', tags: ['networks'], summary: 'List networks' } })
    .output(z.array(ZNetwork)).query(({ ctx, input }) => ctx.core.networks.list(ctx.actor, input.tenantId)),
  get: tenantProcedure
    .meta({ openapi: { method: 'GET', path: '/tenants/{tenantId}/networks/{networkId}', tags: ['networks'], summary: 'A network with its leases' } })
    .input(ZNetworkRef).output(ZNetworkDetail).query(({ ctx, input }) => ctx.core.networks.get(ctx.actor, input.tenantId, input.networkId)),
  create: tenantProcedure
    .meta({ openapi: { method: 'POST', path: '/tenants/{tenantId}/networks', tags: ['networks'], summary: 'Create a network' }, rest: { status: 201, location: 'child' } })
    .input(ZCreateNetworkInput)
    .output(ZNetwork)
    .mutation(({ ctx, input: { tenantId, ...network } }) => ctx.core.networks.create(ctx.actor, tenantId, network)),
  delete: tenantProcedure
    .meta({ openapi: { method: 'DELETE', path: '/tenants/{tenantId}/networks/{networkId}', tags: ['networks'], summary: 'Delete a network' } })
    .input(ZNetworkRef)
    .output(z.object({ ok: z.literal(true) }))
    .mutation(async ({ ctx, input }) => {
      await ctx.core.networks.delete(ctx.actor, input.tenantId, input.networkId)
      return { ok: true as const }
    }),
})
