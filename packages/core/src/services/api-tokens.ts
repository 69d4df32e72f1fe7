import { z } from 'zod'
import type { Actor } from '../auth/actor'
import { requireRole, requireSignedIn, ROLE_RANK } from '../auth/actor'
import { auditEvent } from '../auth/audit'
import { mintToken } from '../auth/secrets'
import type { Clock } from '../clock'
import { CoreError, forbidden } from '../errors'
import type { TMemberRole } from '../schemas/tenant'
import { ZMemberRole } from '../schemas/tenant'
import type { Db } from '../store/db'
import type { HotStore } from '../store/hot-store'

export const ZApiToken = z.object({
  id: z.string(),
  name: z.string(),
  prefix: z.string(),
  role: ZMemberRole,
  createdBy: z.string(),
  expiresAt: z.date().nullable(),
  lastUsedAt: z.date().nullable(),
  createdAt: z.date(),
})
export type TApiToken = z.infer<typeof ZApiToken>

/**
 * Bearer tokens for scripts and CI (`Authorization: Bearer at_…`), scoped to one tenant and
 * one role no higher than their creator's. Stored hashed; shown once.
 */
export function createApiTokenService({ db, hot, clock }: { db: Db; hot: HotStore; clock: Clock }) {
  return {
    async list(actor: Actor, tenantId: string): Promise<TApiToken[]> {
      requireRole(actor, tenantId, 'admin')
      const rows = await db.apiToken.findMany({
        where: { tenantId },
        orderBy: { createdAt: 'desc' },
        select: { id: true, name: true, prefix: true, role: true, expiresAt: true, lastUsedAt: true, createdAt: true, user: { select: { email: true } } },
      })
      return rows.map(({ user, ...t }) => ({ ...t, createdBy: user.email }))
    },

    async create(actor: Actor, tenantId: string, input: { name: string; role: TMemberRole; ttlDays: number | null }): Promise<{ token: string; apiToken: TApiToken }> {
      const mine = requireRole(actor, tenantId, 'developer')
      requireSignedIn(actor)
      if (ROLE_RANK[input.role] > ROLE_RANK[mine]) throw forbidden(`A token cannot have more rights than you (${mine})`)
      const { token, prefix, tokenHash } = mintToken('at')
      const t = await db.apiToken.create({
        data: {
          name: input.name,
          prefix,
          tokenHash,
          userId: actor.userId,
          tenantId,
          role: input.role,
          expiresAt: input.ttlDays ? new Date(clock.now().getTime() + input.ttlDays * 86_400_000) : null,
        },
        select: { id: true, name: true, prefix: true, role: true, expiresAt: true, lastUsedAt: true, createdAt: true },
      })
      await hot.recordEvent(auditEvent(actor, { tenantId, type: 'token.created', subject: `token/${t.prefix}`, message: `API token "${t.name}" (${t.role}) created` }))
      return { token, apiToken: { ...t, createdBy: actor.email } }
    },

    async revoke(actor: Actor, tenantId: string, id: string): Promise<void> {
      requireRole(actor, tenantId, 'admin')
      const { count } = await db.apiToken.deleteMany({ where: { id, tenantId } })
      if (!count) throw new CoreError('NOT_FOUND', 'Token not found')
      await hot.recordEvent(auditEvent(actor, { tenantId, type: 'token.revoked', subject: `token/${id}`, message: 'API token revoked' }))
    },
  }
}
