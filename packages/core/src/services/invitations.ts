import { z } from 'zod'
import type { Actor } from '../auth/actor'
import { requireRole, requireSignedIn, ROLE_RANK, roleIn } from '../auth/actor'
import { auditEvent } from '../auth/audit'
import type { PasswordHasher } from '../auth/password-hasher'
import { hashToken, mintToken } from '../auth/secrets'
import type { Clock } from '../clock'
import { CoreError, forbidden } from '../errors'
import type { TInviteInput, TMemberRole, TSignUpInput } from '../schemas/tenant'
import { ZMemberRole } from '../schemas/tenant'
import type { ChangeBus } from '../store/change-bus'
import type { Db } from '../store/db'
import type { HotStore } from '../store/hot-store'
import type { AuthService } from './auth'

export const ZInvitation = z.object({
  id: z.string(),
  email: z.string(),
  role: ZMemberRole,
  invitedBy: z.string(),
  expiresAt: z.date(),
  createdAt: z.date(),
})
export type TInvitation = z.infer<typeof ZInvitation>

/** An invitation as its addressee sees it. */
export const ZReceivedInvitation = z.object({
  id: z.string(),
  email: z.string(),
  role: ZMemberRole,
  tenant: z.object({ slug: z.string(), name: z.string() }),
  invitedBy: z.string(),
  expiresAt: z.date(),
})
export type TReceivedInvitation = z.infer<typeof ZReceivedInvitation>

const invitationSelect = { id: true, email: true, role: true, expiresAt: true, createdAt: true, invitedBy: { select: { email: true, name: true } } } as const
const receivedSelect = { ...invitationSelect, tenant: { select: { id: true, slug: true, name: true } } } as const

const gone = () => new CoreError('NOT_FOUND', 'This invitation is not valid any more (expired, withdrawn or already used)')

/**
 * Membership by invitation: an owner or admin invites an e-mail with a role; the person
 * accepts (signed in with that e-mail, or by creating the account through the invitation's
 * secret link) or declines. Nobody is added to a tenant without consent, and the inviter
 * learns nothing about whether the e-mail has an account.
 *
 * Operators: the platform-operator role gives no membership rights in a tenant. Its one
 * power here is to invite the first owner of a tenant that has no owner (how a new tenant
 * gets its owner); such a bootstrap invitation cannot be accepted by an operator account, so
 * an operator cannot make themselves owner. Everything is audited in the tenant's events.
 */
export function createInvitationService(deps: { db: Db; hot: HotStore; bus: ChangeBus; clock: Clock; auth: AuthService; hasher: PasswordHasher; ttlMs: number }) {
  const { db, hot, bus, clock, auth, hasher, ttlMs } = deps
  const changed = (tenantId: string) => bus.publish({ kind: 'tenant', tenantId, what: 'member' })
  const live = () => ({ gt: clock.now() })

  /** Whether `actor` may invite (or withdraw an invitation) with `role`; true for an operator's bootstrap invitation. */
  async function mayInvite(actor: Actor, tenantId: string, role: TMemberRole): Promise<boolean> {
    const mine = actor.memberships.get(tenantId)
    if (mine && ROLE_RANK[mine] >= ROLE_RANK.admin) {
      if (role === 'owner' && mine !== 'owner') throw forbidden('Only an owner can invite an owner')
      return false
    }
    if (actor.operator) {
      if (!(await db.tenant.findUnique({ where: { id: tenantId }, select: { id: true } }))) throw new CoreError('NOT_FOUND', 'Tenant not found')
      if (await db.membership.count({ where: { tenantId, role: 'owner' } }))
        throw forbidden("This tenant has an owner: its owners and admins manage its members. Operators act in a tenant only as a member its owners invited.")
      if (role !== 'owner') throw forbidden('A tenant without an owner first needs an owner: invite its owner, who then invites everyone else')
      return true
    }
    requireRole(actor, tenantId, 'admin')
    return false
  }

  const toInvitation = (i: { id: string; email: string; role: TMemberRole; expiresAt: Date; createdAt: Date; invitedBy: { email: string } }): TInvitation => ({
    id: i.id,
    email: i.email,
    role: i.role,
    invitedBy: i.invitedBy.email,
    expiresAt: i.expiresAt,
    createdAt: i.createdAt,
  })
  const toReceived = (i: { id: string; email: string; role: TMemberRole; expiresAt: Date; tenant: { slug: string; name: string }; invitedBy: { name: string } }): TReceivedInvitation => ({
    id: i.id,
    email: i.email,
    role: i.role,
    tenant: { slug: i.tenant.slug, name: i.tenant.name },
    invitedBy: i.invitedBy.name,
    expiresAt: i.expiresAt,
  })

  return {
    /** Pending invitations of a tenant (expired ones too, until re-sent or withdrawn). */
    async list(actor: Actor, tenantId: string): Promise<TInvitation[]> {
      requireRole(actor, tenantId, actor.operator ? 'viewer' : 'admin')
      const rows = await db.invitation.findMany({ where: { tenantId }, orderBy: { createdAt: 'desc' }, select: invitationSelect })
      return rows.map(toInvitation)
    },

    /**
     * Invites an e-mail. Returns the invitation and its secret link token (shown once). The
     * answer is the same whether or not an account has this e-mail; inviting it again
     * replaces the earlier invitation (a new link, the old one stops working).
     */
    async create(actor: Actor, tenantId: string, input: TInviteInput): Promise<{ token: string; invitation: TInvitation }> {
      requireSignedIn(actor)
      const bootstrap = await mayInvite(actor, tenantId, input.role)
      const member = await db.membership.findFirst({ where: { tenantId, user: { email: input.email } }, select: { id: true } })
      if (member) throw new CoreError('CONFLICT', `${input.email} is already a member`)
      const { token, tokenHash } = mintToken('iv')
      const data = { role: input.role, tokenHash, invitedById: actor.userId, bootstrap, expiresAt: new Date(clock.now().getTime() + ttlMs), createdAt: clock.now() }
      const inv = await db.invitation.upsert({
        where: { tenantId_email: { tenantId, email: input.email } },
        create: { tenantId, email: input.email, ...data },
        update: data,
        select: invitationSelect,
      })
      await hot.recordEvent(auditEvent(actor, { tenantId, type: 'invitation.created', subject: `invitation/${inv.email}`, message: `${inv.email} invited as ${inv.role}`, data: { bootstrap } }))
      changed(tenantId)
      return { token, invitation: toInvitation(inv) }
    },

    async revoke(actor: Actor, tenantId: string, id: string): Promise<void> {
      const inv = roleIn(actor, tenantId) ? await db.invitation.findFirst({ where: { id, tenantId }, select: { id: true, email: true, role: true } }) : null
      if (!inv) throw new CoreError('NOT_FOUND', 'Invitation not found')
      await mayInvite(actor, tenantId, inv.role)
      await db.invitation.deleteMany({ where: { id: inv.id } })
      await hot.recordEvent(auditEvent(actor, { tenantId, type: 'invitation.revoked', subject: `invitation/${inv.email}`, message: `Invitation of ${inv.email} withdrawn` }))
      changed(tenantId)
    },

    /** Live invitations addressed to the signed-in person's e-mail. */
    async received(actor: Actor): Promise<TReceivedInvitation[]> {
      requireSignedIn(actor)
      const rows = await db.invitation.findMany({ where: { email: actor.email, expiresAt: live() }, orderBy: { createdAt: 'desc' }, select: receivedSelect })
      return rows.map(toReceived)
    },

    async accept(actor: Actor, id: string): Promise<{ tenantSlug: string }> {
      requireSignedIn(actor)
      const inv = await db.invitation.findFirst({ where: { id, email: actor.email, expiresAt: live() }, select: { ...receivedSelect, bootstrap: true } })
      if (!inv) throw gone()
      if (inv.bootstrap && actor.operator) throw forbidden("An operator cannot accept an operator's invitation: ask the tenant's owner to invite you")
      await db.$transaction(async (tx) => {
        await tx.membership.upsert({
          where: { userId_tenantId: { userId: actor.userId, tenantId: inv.tenant.id } },
          create: { userId: actor.userId, tenantId: inv.tenant.id, role: inv.role },
          update: {},
        })
        await tx.invitation.delete({ where: { id: inv.id } })
      })
      await hot.recordEvent(auditEvent(actor, { tenantId: inv.tenant.id, type: 'invitation.accepted', subject: `user/${actor.email}`, message: `${actor.email} joined as ${inv.role}` }))
      changed(inv.tenant.id)
      return { tenantSlug: inv.tenant.slug }
    },

    async decline(actor: Actor, id: string): Promise<void> {
      requireSignedIn(actor)
      const inv = await db.invitation.findFirst({ where: { id, email: actor.email }, select: { id: true, tenantId: true } })
      if (!inv) throw gone()
      await db.invitation.deleteMany({ where: { id: inv.id } })
      await hot.recordEvent(auditEvent(actor, { tenantId: inv.tenantId, type: 'invitation.declined', subject: `user/${actor.email}`, message: `${actor.email} declined the invitation` }))
      changed(inv.tenantId)
    },

    /** What an invitation link is for, for the page the link opens. */
    async preview(token: string): Promise<TReceivedInvitation> {
      const inv = await db.invitation.findFirst({ where: { tokenHash: hashToken(token), expiresAt: live() }, select: receivedSelect })
      if (!inv) throw gone()
      return toReceived(inv)
    },

    /**
     * Creates the invited account through the link, joins the tenant and starts a session.
     * An e-mail that already has an account is told to sign in and accept instead (only the
     * holder of a live invitation link can learn that).
     */
    async signUp(input: TSignUpInput): Promise<{ session: { token: string; expiresAt: Date }; tenantSlug: string }> {
      const inv = await db.invitation.findFirst({ where: { tokenHash: hashToken(input.token), expiresAt: live() }, select: receivedSelect })
      if (!inv) throw gone()
      const taken = () => new CoreError('CONFLICT', 'This e-mail already has an account: sign in with it to accept the invitation')
      if (await db.user.findUnique({ where: { email: inv.email }, select: { id: true } })) throw taken()
      const passwordHash = await hasher.hash(input.password)
      const user = await db
        .$transaction(async (tx) => {
          // Two sign-ups through one link: the second finds the invitation gone.
          const { count } = await tx.invitation.deleteMany({ where: { id: inv.id } })
          if (!count) throw gone()
          const u = await tx.user.create({ data: { email: inv.email, name: input.name, passwordHash }, select: { id: true, email: true } })
          await tx.membership.create({ data: { userId: u.id, tenantId: inv.tenant.id, role: inv.role } })
          return u
        })
        .catch((err) => {
          // The account was created meanwhile (through another tenant's invitation).
          throw (err as { code?: string }).code === 'P2002' ? taken() : err
        })
      await hot.recordEvent({ tenantId: inv.tenant.id, kind: 'audit', type: 'invitation.accepted', actorId: user.id, subject: `user/${user.email}`, message: `${user.email} created an account and joined as ${inv.role}` })
      changed(inv.tenant.id)
      return { session: await auth.startSession(user.id), tenantSlug: inv.tenant.slug }
    },
  }
}
export type InvitationService = ReturnType<typeof createInvitationService>
