import { ZApiToken, ZMemberRole } from '@alveary/core'
import { z } from 'zod'
import { router, tenantProcedure } from '../trpc'

export const tokensRouter = router({
  list: tenantProcedure
    .meta({ openapi: { method: 'GET', path: '/tenants/{tenantId}/tokens', tags: ['tokens'], summary: 'API tokens of the tenant' } })
    .output(z.array(ZApiToken)).query(({ ctx, input }) => ctx.core.apiTokens.list(ctx.actor, input.tenantId)),
  create: tenantProcedure
    .meta({ openapi: { method: 'POST', path: '/tenants/{tenantId}/tokens', tags: ['tokens'], summary: 'Create an API token (signed-in people only; the secret is shown once)' }, rest: { status: 201 } })
    .input(z.object({ name: z.string().trim().min(1, 'Required').max(80), role: ZMemberRole, ttlDays: z.number().int().min(1).max(3650).nullable().default(90) }))
    .output(z.object({ token: z.string(), apiToken: ZApiToken }))
    .mutation(({ ctx, input: { tenantId, ...t } }) => ctx.core.apiTokens.create(ctx.actor, tenantId, t)),
  revoke: tenantProcedure
    .meta({ openapi: { method: 'DELETE', path: '/tenants/{tenantId}/tokens/{id}', tags: ['tokens'], summary: 'Revoke an API token' } })
    .input(z.object({ id: z.string().uuid() }))
    .output(z.object({ ok: z.literal(true) }))
    .mutation(async ({ ctx, input }) => {
      await ctx.core.apiTokens.revoke(ctx.actor, input.tenantId, input.id)
      return { ok: true as const }
    }),
})
