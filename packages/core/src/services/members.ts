import { z } from 'zod'
import type { Actor } from '../auth/actor'
import { requireRole } from '../auth/actor'
import { auditEvent } from '../auth/audit'
import { CoreError, forbidden } from '../errors'
import type { TMemberRole } from '../schemas/tenant'
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
 * Who manages a tenant's members: its owners and admins; only owners grant or take the
 * owner role. The platform-operator role gives no say here: an operator changes members of
 * a tenant only as one of its owners or admins (the one exception, inviting the first owner
 * of a tenant that has none, is in invitations.ts).
 */
export function requireMemberAdmin(actor: Actor, tenantId: string, touchesOwner: boolean): void {
  const role = requireRole(actor, tenantId, 'admin')
  if (touchesOwner && role !== 'owner') throw forbidden('Only an owner can grant or remove the owner role')
}

export function createMemberService({ db, hot, bus }: { db: Db; hot: HotStore; bus: ChangeBus }) {
  const changed = (tenantId: string) => bus.publish({ kind: 'tenant', tenantId, what: 'member' })
  const ownerCount = (tenantId: string) => db.membership.count({ where: { tenantId, role: 'owner' } })
  const membership = async (actor: Actor, tenantId: string, userId: string) => {
    requireRole(actor, tenantId, 'viewer')
    const m = await db.membership.findUnique({ where: { userId_tenantId: { userId, tenantId } }, select: { id: true, role: true, user: { select: { email: true } } } })
    if (!m) throw new CoreError('NOT_FOUND', 'Member not found')
    return m
  }

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

    async setRole(actor: Actor, tenantId: string, userId: string, role: TMemberRole): Promise<void> {
      const m = await membership(actor, tenantId, userId)
      requireMemberAdmin(actor, tenantId, role === 'owner' || m.role === 'owner')
      if (m.role === 'owner' && role !== 'owner' && (await ownerCount(tenantId)) <= 1) throw new CoreError('CONFLICT', 'A tenant needs at least one owner')
      await db.membership.update({ where: { id: m.id }, data: { role } })
      await hot.recordEvent(auditEvent(actor, { tenantId, type: 'member.role', subject: `user/${m.user.email}`, message: `Role of ${m.user.email} changed from ${m.role} to ${role}` }))
      changed(tenantId)
    },

    async remove(actor: Actor, tenantId: string, userId: string): Promise<void> {
      const m = await membership(actor, tenantId, userId)
      requireMemberAdmin(actor, tenantId, m.role === 'owner')
      if (m.role === 'owner' && (await ownerCount(tenantId)) <= 1) throw new CoreError('CONFLICT', 'A tenant needs at least one owner')
      await db.membership.delete({ where: { id: m.id } })
      await hot.recordEvent(auditEvent(actor, { tenantId, type: 'member.removed', subject: `user/${m.user.email}`, message: `${m.user.email} removed` }))
      changed(tenantId)
    },
  }
}
export type MemberService = ReturnType<typeof createMemberService>
