import { ZEmail, ZMemberRole } from '@alveary/core'
import { z } from 'zod'
import { authedProcedure, publicProcedure, router } from '../trpc'

export const ZMe = z.object({
  user: z.object({ id: z.string(), email: z.string(), name: z.string(), operator: z.boolean() }),
  tenants: z.array(z.object({ id: z.string(), slug: z.string(), name: z.string(), role: ZMemberRole.nullable() })),
})

export const authRouter = router({
  login: publicProcedure
    .meta({ openapi: { method: 'POST', path: '/auth/login', tags: ['auth'], summary: 'Sign in: the session token comes back as the alveary_session cookie and works as a Bearer token', protect: false } })
    .input(z.object({ email: ZEmail, password: z.string().min(1, 'Required').max(200) }))
    .output(z.object({ ok: z.literal(true) }))
    .mutation(async ({ ctx, input }) => {
      const s = await ctx.core.auth.login(input.email, input.password, { address: ctx.clientAddress })
      ctx.setSessionCookie(s.token, s.expiresAt)
      return { ok: true as const }
    }),

  logout: publicProcedure
    .meta({ openapi: { method: 'POST', path: '/auth/logout', tags: ['auth'], summary: 'End the session' } })
    .output(z.object({ ok: z.literal(true) })).mutation(async ({ ctx }) => {
    if (ctx.token) await ctx.core.auth.logout(ctx.token)
    ctx.clearSessionCookie()
    return { ok: true as const }
  }),

  me: authedProcedure
    .meta({ openapi: { method: 'GET', path: '/me', tags: ['auth'], summary: 'Who you are and your tenants' } })
    .output(ZMe).query(async ({ ctx }) => {
    const tenants = await ctx.core.tenants.list(ctx.actor)
    const a = ctx.actor
    return {
      user: { id: a.userId, email: a.email, name: a.kind === 'user' ? a.name : 'API token', operator: a.operator },
      tenants: tenants.map((t) => ({ id: t.id, slug: t.slug, name: t.name, role: t.role })),
    }
  }),
})
