import { z } from 'zod'
import type { Actor } from '../auth/actor'
import { requireRole } from '../auth/actor'
import type { Db, Tx } from '../store/db'
import type { Prisma } from '../generated/prisma/client'

export const ZEvent = z.object({
  id: z.string(),
  kind: z.string(),
  type: z.string(),
  subject: z.string(),
  message: z.string(),
  actorId: z.string().nullable(),
  createdAt: z.date(),
})
export type TEvent = z.infer<typeof ZEvent>

export interface NewEvent {
  tenantId?: string | null
  kind: 'audit' | 'system'
  type: string
  actorId?: string | null
  subject: string
  message: string
  data?: Prisma.InputJsonValue
}

export function recordEvent(db: Db | Tx, e: NewEvent) {
  return db.event.create({ data: { ...e, data: e.data ?? {} }, select: { id: true } })
}

export function createEventService({ db }: { db: Db }) {
  return {
    async list(actor: Actor, tenantId: string, opts: { limit: number; beforeId?: string }): Promise<TEvent[]> {
      requireRole(actor, tenantId, 'viewer')
      const rows = await db.event.findMany({
        where: { tenantId, ...(opts.beforeId ? { id: { lt: BigInt(opts.beforeId) } } : {}) },
        orderBy: { id: 'desc' },
        take: opts.limit,
        select: { id: true, kind: true, type: true, subject: true, message: true, actorId: true, createdAt: true },
      })
      return rows.map((r) => ({ ...r, id: r.id.toString() }))
    },
  }
}
