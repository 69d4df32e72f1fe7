import { ZInvitation, ZInvitationToken, ZInviteInput, ZReceivedInvitation, ZSignUpInput } from '@alveary/core'
import { z } from 'zod'
import { authedProcedure, publicProcedure, router, tenantProcedure } from '../trpc'

const ok = z.object({ ok: z.literal(true) })
const ZInvitationRef = z.object({ id: z.string().uuid() })

/** Membership by invitation (see core's services/invitations.ts for the rules). */
export const invitationsRouter = router({
  /** A tenant's pending invitations (owners and admins). */
  list: tenantProcedure
    .meta({ openapi: { method: 'GET', path: '/tenants/{tenantId}/invitations', tags: ['members'], summary: 'Pending invitations (owners and admins)' } })
    .output(z.array(ZInvitation)).query(({ ctx, input }) => ctx.core.invitations.list(ctx.actor, input.tenantId)),
  /** Returns the link token once; the same answer whether or not the e-mail has an account. */
  create: tenantProcedure
    .meta({ openapi: { method: 'POST', path: '/tenants/{tenantId}/invitations', tags: ['members'], summary: 'Invite someone by e-mail; the link token comes back once (signed-in people only, not API tokens)' }, rest: { status: 201 } })
    .input(ZInviteInput)
    .output(z.object({ token: z.string(), invitation: ZInvitation }))
    .mutation(({ ctx, input: { tenantId, ...invite } }) => ctx.core.invitations.create(ctx.actor, tenantId, invite)),
  revoke: tenantProcedure
    .meta({ openapi: { method: 'DELETE', path: '/tenants/{tenantId}/invitations/{id}', tags: ['members'], summary: 'Revoke a pending invitation' } })
    .input(ZInvitationRef)
    .output(ok)
    .mutation(async ({ ctx, input }) => {
      await ctx.core.invitations.revoke(ctx.actor, input.tenantId, input.id)
      return { ok: true as const }
    }),

  /** Invitations addressed to the signed-in person. */
  received: authedProcedure
    .meta({ openapi: { method: 'GET', path: '/me/invitations', tags: ['auth'], summary: 'Invitations addressed to you' } })
    .output(z.array(ZReceivedInvitation)).query(({ ctx }) => ctx.core.invitations.received(ctx.actor)),
  accept: authedProcedure
    .meta({ openapi: { method: 'POST', path: '/me/invitations/{id}/accept', tags: ['auth'], summary: 'Accept an invitation: you become a member' } })
    .input(ZInvitationRef)
    .output(z.object({ tenantSlug: z.string() }))
    .mutation(({ ctx, input }) => ctx.core.invitations.accept(ctx.actor, input.id)),
  decline: authedProcedure
    .meta({ openapi: { method: 'POST', path: '/me/invitations/{id}/decline', tags: ['auth'], summary: 'Decline an invitation' } })
    .input(ZInvitationRef)
    .output(ok)
    .mutation(async ({ ctx, input }) => {
      await ctx.core.invitations.decline(ctx.actor, input.id)
      return { ok: true as const }
    }),

  /** The invitation behind a link, for the page it opens (no session needed). */
  preview: publicProcedure
    .meta({ openapi: { method: 'GET', path: '/invitations/preview', tags: ['auth'], summary: 'The invitation behind a link token (no sign-in needed)', protect: false } })
    .input(z.object({ token: ZInvitationToken }))
    .output(ZReceivedInvitation)
    .query(({ ctx, input }) => ctx.core.invitations.preview(input.token)),
  /** Creates the invited account through the link and signs it in. */
  signUp: publicProcedure
    .meta({ openapi: { method: 'POST', path: '/invitations/sign-up', tags: ['auth'], summary: 'Create the invited account through the link token; the session comes back as the alveary_session cookie', protect: false } })
    .input(ZSignUpInput)
    .output(z.object({ tenantSlug: z.string() }))
    .mutation(async ({ ctx, input }) => {
      const { session, tenantSlug } = await ctx.core.invitations.signUp(input)
      ctx.setSessionCookie(session.token, session.expiresAt)
      return { tenantSlug }
    }),
})
