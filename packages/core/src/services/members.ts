import { z } from 'zod'
import type { Actor } from '../auth/actor'
import { requireRole, roleIn } from '../auth/actor'
import { hashPassword } from '../auth/secrets'
import { CoreError, forbidden } from '../errors'
import type { TAddMemberInput, TMemberRole } from '../schemas/tenant'
import { ZMemberRole } from '../schemas/tenant'
import type { ChangeBus } from '../store/change-bus'
import type { Db } from '../store/db'
import type { HotStore } from '../store/hot-store'

export const ZMember = z.object({
  userId: z.string(),
  email: z.string(),
  name: z.string(),
  role: ZMemberRole,
  createdAt: z.date(),
})
export type TMember = z.infer<typeof ZMember>

/**
 * Owners and admins manage members; operators manage members of any tenant (they create
 * tenants and their first owner). Only owners (or operators) grant or take the owner role.
 */
function requireMemberAdmin(actor: Actor, tenantId: string, touchesOwner: boolean) {
  if (actor.operator) return
  const role = requireRole(actor, tenantId, 'admin')
  if (touchesOwner && role !== 'owner') throw forbidden('Only an owner can grant or remove the owner role')
}

export function createMemberService({ db, hot, bus }: { db: Db; hot: HotStore; bus: ChangeBus }) {
  const changed = (tenantId: string) => bus.publish({ kind: 'tenant', tenantId, what: 'member' })
  const ownerCount = (tenantId: string) => db.membership.count({ where: { tenantId, role: 'owner' } })

  return {
    async list(actor: Actor, tenantId: string): Promise<TMember[]> {
      requireRole(actor, tenantId, 'viewer')
      const rows = await db.membership.findMany({
        where: { tenantId },
        orderBy: { createdAt: 'asc' },
        select: { role: true, createdAt: true, user: { select: { id: true, email: true, name: true } } },
      })
      return rows.map((m) => ({ userId: m.user.id, email: m.user.email, name: m.user.name, role: m.role, createdAt: m.createdAt }))
    },

    async add(actor: Actor, tenantId: string, input: TAddMemberInput): Promise<TMember> {
      if (!roleIn(actor, tenantId)) throw new CoreError('NOT_FOUND', 'Tenant not found')
      requireMemberAdmin(actor, tenantId, input.role === 'owner')
      let user = await db.user.findUnique({ where: { email: input.email }, select: { id: true, email: true, name: true } })
      if (!user) {
        if (!input.password) throw new CoreError('BAD_REQUEST', `No account for ${input.email} yet: give a name and an initial password to create it`)
        user = await db.user.create({
          data: { email: input.email, name: input.name ?? input.email.split('@')[0]!, passwordHash: await hashPassword(input.password) },
          select: { id: true, email: true, name: true },
        })
      }
      const existing = await db.membership.findUnique({ where: { userId_tenantId: { userId: user.id, tenantId } }, select: { id: true } })
      if (existing) throw new CoreError('CONFLICT', `${input.email} is already a member`)
      const m = await db.membership.create({ data: { userId: user.id, tenantId, role: input.role }, select: { role: true, createdAt: true } })
      await hot.recordEvent({ tenantId, kind: 'audit', type: 'member.added', actorId: actor.userId, subject: `user/${user.email}`, message: `${user.email} added as ${input.role}` })
      changed(tenantId)
      return { userId: user.id, email: user.email, name: user.name, role: m.role, createdAt: m.createdAt }
    },

    async setRole(actor: Actor, tenantId: string, userId: string, role: TMemberRole): Promise<void> {
      const m = await db.membership.findUnique({ where: { userId_tenantId: { userId, tenantId } }, select: { id: true, role: true } })
      if (!m || !roleIn(actor, tenantId)) throw new CoreError('NOT_FOUND', 'Member not found')
      requireMemberAdmin(actor, tenantId, role === 'owner' || m.role === 'owner')
      if (m.role === 'owner' && role !== 'owner' && (await ownerCount(tenantId)) <= 1) throw new CoreError('CONFLICT', 'A tenant needs at least one owner')
      await db.membership.update({ where: { id: m.id }, data: { role } })
      await hot.recordEvent({ tenantId, kind: 'audit', type: 'member.role', actorId: actor.userId, subject: `user/${userId}`, message: `Role changed from ${m.role} to ${role}` })
      changed(tenantId)
    },

    async remove(actor: Actor, tenantId: string, userId: string): Promise<void> {
      const m = await db.membership.findUnique({ where: { userId_tenantId: { userId, tenantId } }, select: { id: true, role: true } })
      if (!m || !roleIn(actor, tenantId)) throw new CoreError('NOT_FOUND', 'Member not found')
      requireMemberAdmin(actor, tenantId, m.role === 'owner')
      if (m.role === 'owner' && (await ownerCount(tenantId)) <= 1) throw new CoreError('CONFLICT', 'A tenant needs at least one owner')
      await db.membership.delete({ where: { id: m.id } })
      await hot.recordEvent({ tenantId, kind: 'audit', type: 'member.removed', actorId: actor.userId, subject: `user/${userId}`, message: 'Member removed' })
      changed(tenantId)
    },
  }
}
export type MemberService = ReturnType<typeof createMemberService>
