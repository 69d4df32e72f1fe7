import { ZCreateTenantInput, ZMember, ZMemberRole, ZQuotas, ZTenant, ZTenantUsage, ZFlag } from '@alveary/core'
import { z } from 'zod'
import { authedProcedure, operatorProcedure, router, tenantProcedure } from '../trpc'

const ok = z.object({ ok: z.literal(true) })

export const tenantsRouter = router({
  list: authedProcedure
    .meta({ openapi: { method: 'GET', path: '/tenants', tags: ['tenants'], summary: 'Tenants you belong to (operators: all)' } })
    .output(z.array(ZTenant)).query(({ ctx }) => ctx.core.tenants.list(ctx.actor)),
  get: tenantProcedure
    .meta({ openapi: { method: 'GET', path: '/tenants/{tenantId}', tags: ['tenants'], summary: 'A tenant with its quotas' } })
    .output(ZTenant).query(({ ctx, input }) => ctx.core.tenants.get(ctx.actor, input.tenantId)),
  create: operatorProcedure
    .meta({ openapi: { method: 'POST', path: '/tenants', tags: ['tenants'], summary: 'Operators: create a tenant' }, rest: { status: 201, location: 'child' } })
    .input(ZCreateTenantInput).output(ZTenant).mutation(({ ctx, input }) => ctx.core.tenants.create(ctx.actor, input)),
  setQuotas: operatorProcedure
    .meta({ openapi: { method: 'PATCH', path: '/tenants/{tenantId}/quotas', tags: ['tenants'], summary: 'Operators: change quotas' } })
    .input(z.object({ tenantId: z.string().uuid(), quotas: ZQuotas.partial() }))
    .output(ZTenant)
    .mutation(({ ctx, input }) => ctx.core.tenants.setQuotas(ctx.actor, input.tenantId, input.quotas)),
  setTrusted: operatorProcedure
    .meta({ openapi: { method: 'PUT', path: '/tenants/{tenantId}/trusted', tags: ['tenants'], summary: 'Operators: trust a tenant (its process apps may run unsandboxed)' } })
    .input(z.object({ tenantId: z.string().uuid(), trusted: ZFlag }))
    .output(ZTenant)
    .mutation(({ ctx, input }) => ctx.core.tenants.setTrusted(ctx.actor, input.tenantId, input.trusted)),
  usage: tenantProcedure
    .meta({ openapi: { method: 'GET', path: '/tenants/{tenantId}/usage', tags: ['tenants'], summary: 'Usage against quotas' } })
    .output(ZTenantUsage).query(({ ctx, input }) => ctx.core.tenants.usage(ctx.actor, input.tenantId)),
})

export const membersRouter = router({
  list: tenantProcedure
    .meta({ openapi: { method: 'GET', path: '/tenants/{tenantId}/members', tags: ['members'], summary: 'Members and roles' } })
    .output(z.array(ZMember)).query(({ ctx, input }) => ctx.core.members.list(ctx.actor, input.tenantId)),
  setRole: tenantProcedure
    .meta({ openapi: { method: 'PUT', path: '/tenants/{tenantId}/members/{userId}/role', tags: ['members'], summary: 'Change the role of a member' } })
    .input(z.object({ userId: z.string().uuid(), role: ZMemberRole }))
    .output(ok)
    .mutation(async ({ ctx, input }) => {
      await ctx.core.members.setRole(ctx.actor, input.tenantId, input.userId, input.role)
      return { ok: true as const }
    }),
  remove: tenantProcedure
    .meta({ openapi: { method: 'DELETE', path: '/tenants/{tenantId}/members/{userId}', tags: ['members'], summary: 'Remove a member' } })
    .input(z.object({ userId: z.string().uuid() }))
    .output(ok)
    .mutation(async ({ ctx, input }) => {
      await ctx.core.members.remove(ctx.actor, input.tenantId, input.userId)
      return { ok: true as const }
    }),
})
