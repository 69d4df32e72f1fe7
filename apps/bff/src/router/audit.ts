import { ZAuditQuery, ZAuditRecord } from '@alveary/core'
import { z } from 'zod'
import { authedProcedure, router } from '../trpc'

/** The audit trail: a tenant's owners and admins read its rows, operators every row (leave tenantId out). */
export const auditRouter = router({
  list: authedProcedure
    .meta({ openapi: { method: 'GET', path: '/audit', tags: ['audit'], summary: 'The audit trail, newest first (tenant owners and admins: with tenantId; operators: all). JSON lines: /audit/export' }, rest: { cursor: 'beforeId' } })
    .input(ZAuditQuery)
    .output(z.object({ records: z.array(ZAuditRecord), nextCursor: z.string().nullable() }))
    .query(({ ctx, input }) => ctx.core.audit.list(ctx.actor, input)),
})
