import { ZCreateTenantInput, ZMember, ZMemberRole, ZQuotas, ZTenant, ZTenantUsage } from '@alveary/core'
import { z } from 'zod'
import { authedProcedure, operatorProcedure, router, tenantProcedure } from '../trpc'

const ok = z.object({ ok: z.literal(true) })

export const tenantsRouter = router({
  list: authedProcedure.output(z.array(ZTenant)).query(({ ctx }) => ctx.core.tenants.list(ctx.actor)),
  get: tenantProcedure.output(ZTenant).query(({ ctx, input }) => ctx.core.tenants.get(ctx.actor, input.tenantId)),
  create: operatorProcedure.input(ZCreateTenantInput).output(ZTenant).mutation(({ ctx, input }) => ctx.core.tenants.create(ctx.actor, input)),
  setQuotas: operatorProcedure
    .input(z.object({ tenantId: z.string().uuid(), quotas: ZQuotas.partial() }))
    .output(ZTenant)
    .mutation(({ ctx, input }) => ctx.core.tenants.setQuotas(ctx.actor, input.tenantId, input.quotas)),
  setTrusted: operatorProcedure
    .input(z.object({ tenantId: z.string().uuid(), trusted: z.boolean() }))
    .output(ZTenant)
    .mutation(({ ctx, input }) => ctx.core.tenants.setTrusted(ctx.actor, input.tenantId, input.trusted)),
  usage: tenantProcedure.output(ZTenantUsage).query(({ ctx, input }) => ctx.core.tenants.usage(ctx.actor, input.tenantId)),
})

export const membersRouter = router({
  list: tenantProcedure.output(z.array(ZMember)).query(({ ctx, input }) => ctx.core.members.list(ctx.actor, input.tenantId)),
  setRole: tenantProcedure
    .input(z.object({ userId: z.string().uuid(), role: ZMemberRole }))
    .output(ok)
    .mutation(async ({ ctx, input }) => {
      await ctx.core.members.setRole(ctx.actor, input.tenantId, input.userId, input.role)
      return { ok: true as const }
    }),
  remove: tenantProcedure
    .input(z.object({ userId: z.string().uuid() }))
    .output(ok)
    .mutation(async ({ ctx, input }) => {
      await ctx.core.members.remove(ctx.actor, input.tenantId, input.userId)
      return { ok: true as const }
    }),
})
