import type { Prisma } from '../generated/prisma/client'
import { type Actor, requireOperator, requireRole } from '../auth/actor'
import type { Db } from '../store/db'
import { cleanText, type NewAuditRecord, type TAuditQuery, type TAuditRecord } from './record'

const select = {
  id: true,
  at: true,
  tenantId: true,
  actorKind: true,
  actorId: true,
  actorEmail: true,
  operator: true,
  credential: true,
  sourceIp: true,
  userAgent: true,
  door: true,
  action: true,
  target: true,
  request: true,
  summary: true,
  result: true,
  error: true,
  requestId: true,
} satisfies Prisma.AuditRecordSelect

type Row = Prisma.AuditRecordGetPayload<{ select: typeof select }>
const toRecord = (r: Row): TAuditRecord => ({ ...r, id: r.id.toString(), request: (r.request ?? {}) as Record<string, unknown> })

/**
 * The audit trail: written once per mutation (by the BFF's audit middleware and the agent
 * gateway), never changed (the table refuses UPDATE and DELETE). A tenant's owners and
 * admins read its rows; operators read every row, platform ones included.
 */
export function createAuditTrail({ db }: { db: Db }) {
  function where(actor: Actor, q: Omit<TAuditQuery, 'limit'>): Prisma.AuditRecordWhereInput {
    if (q.tenantId) {
      if (!actor.operator) requireRole(actor, q.tenantId, 'admin')
    } else requireOperator(actor)
    return {
      ...(q.tenantId && { tenantId: q.tenantId }),
      ...(q.actor && { actorEmail: { contains: q.actor, mode: 'insensitive' } }),
      ...(q.action && { action: { startsWith: q.action } }),
      ...(q.result === 'ok' && { result: 'ok' }),
      ...(q.result === 'failed' && { result: { not: 'ok' } }),
      ...((q.since || q.until) && { at: { ...(q.since && { gte: new Date(q.since) }), ...(q.until && { lt: new Date(q.until) }) } }),
      ...(q.beforeId && { id: { lt: BigInt(q.beforeId) } }),
    }
  }

  return {
    async record(r: NewAuditRecord): Promise<void> {
      // Text can come from the request (names, messages): always storable, bounded.
      const text = (v: string | null, max = 1000) => (v === null ? null : cleanText(v, max))
      const data = { ...r, actorEmail: text(r.actorEmail, 200), userAgent: text(r.userAgent, 200), target: text(r.target, 200), summary: text(r.summary, 4000)!, error: text(r.error), request: r.request as Prisma.InputJsonValue }
      await db.auditRecord.create({ data, select: { id: true } })
    },

    /** Newest first; pass the last id as `beforeId` for the next page. */
    async list(actor: Actor, q: TAuditQuery): Promise<{ records: TAuditRecord[]; nextCursor: string | null }> {
      const rows = await db.auditRecord.findMany({ where: where(actor, q), orderBy: { id: 'desc' }, take: q.limit, select })
      return { records: rows.map(toRecord), nextCursor: rows.length === q.limit ? rows[rows.length - 1]!.id.toString() : null }
    },

    /** Every matching row, newest first, in pages (for the JSON-lines export). Access is checked before the first row. */
    async *export(actor: Actor, q: Omit<TAuditQuery, 'limit' | 'beforeId'>): AsyncGenerator<TAuditRecord> {
      const base = where(actor, q)
      let before: bigint | null = null
      for (;;) {
        const rows: Row[] = await db.auditRecord.findMany({ where: before === null ? base : { AND: [base, { id: { lt: before } }] }, orderBy: { id: 'desc' }, take: 500, select })
        for (const r of rows) yield toRecord(r)
        if (rows.length < 500) return
        before = rows[rows.length - 1]!.id
      }
    },
  }
}
export type AuditTrail = ReturnType<typeof createAuditTrail>
