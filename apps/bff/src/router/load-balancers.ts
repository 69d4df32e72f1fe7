import type { TLbVersion, TLoadBalancer } from '@alveary/core'
import { lbVersion, ZFlag, ZLbName, ZLbSettings, ZLoadBalancer } from '@alveary/core'
import { z } from 'zod'
import { ifMatchOf, operatorProcedure, router, tenantProcedure } from '../trpc'

/** A load balancer's ETag is of its version: its settings, not its provisioning state. */
const lbEtag = (d: unknown) => lbVersion(d as TLoadBalancer)

const ZLbRef = z.object({ lbId: z.string().uuid() })
const ok = z.object({ ok: z.literal(true) })

export const loadBalancersRouter = router({
  list: tenantProcedure
    .meta({ openapi: { method: 'GET', path: '/tenants/{tenantId}/load-balancers', tags: ['load-balancers'], summary: 'List load balancers' } })
    .output(z.array(ZLoadBalancer)).query(({ ctx, input }) => ctx.core.loadBalancers.list(ctx.actor, input.tenantId)),
  get: tenantProcedure
    .meta({ openapi: { method: 'GET', path: '/tenants/{tenantId}/load-balancers/{lbId}', tags: ['load-balancers'], summary: 'A load balancer with its addresses and state' }, rest: { etag: lbEtag } })
    .input(ZLbRef).output(ZLoadBalancer).query(({ ctx, input }) => ctx.core.loadBalancers.get(ctx.actor, input.tenantId, input.lbId)),
  create: tenantProcedure
    .meta({ openapi: { method: 'POST', path: '/tenants/{tenantId}/load-balancers', tags: ['load-balancers'], summary: 'Create a load balancer (202: provisioning until a node serves it)' }, rest: { status: 202, location: 'child' } })
    .input(ZLbName)
    .input(ZLbSettings)
    .output(ZLoadBalancer)
    .mutation(({ ctx, input: { tenantId, ...lb } }) => ctx.core.loadBalancers.create(ctx.actor, tenantId, lb)),
  update: tenantProcedure
    .meta({ openapi: { method: 'PUT', path: '/tenants/{tenantId}/load-balancers/{lbId}', tags: ['load-balancers'], summary: 'Replace its settings (202)' }, rest: { status: 202, location: 'self', ifMatch: true } })
    .input(ZLbRef)
    .input(ZLbSettings)
    .output(ZLoadBalancer)
    .mutation(({ ctx, input: { tenantId, lbId, ...settings } }) => ctx.core.loadBalancers.update(ctx.actor, tenantId, lbId, settings, { precondition: ifMatchOf<TLbVersion>(ctx) })),
  delete: tenantProcedure
    .meta({ openapi: { method: 'DELETE', path: '/tenants/{tenantId}/load-balancers/{lbId}', tags: ['load-balancers'], summary: 'Delete a load balancer' } })
    .input(ZLbRef)
    .output(ok)
    .mutation(async ({ ctx, input }) => {
      await ctx.core.loadBalancers.delete(ctx.actor, input.tenantId, input.lbId)
      return { ok: true as const }
    }),
  /** Operators: mark a node for load balancing (or not). */
  setNode: operatorProcedure
    .meta({ openapi: { method: 'PUT', path: '/nodes/{nodeId}/load-balancing', tags: ['nodes'], summary: 'Operators: serve load balancers on this node or not' } })
    .input(z.object({ nodeId: z.string().uuid(), enabled: ZFlag }))
    .output(ok)
    .mutation(async ({ ctx, input }) => {
      await ctx.core.loadBalancers.setNodeLoadBalancing(ctx.actor, input.nodeId, input.enabled)
      return { ok: true as const }
    }),
})
