import { requireRole, ZCursor, ZLogLine, ZSeries } from '@alveary/core'
import { z } from 'zod'
import { changesOf } from '../live'
import { operatorProcedure, router, tenantProcedure } from '../trpc'

const ZLogQuery = z.object({ appId: z.string().uuid(), instanceId: z.string().uuid().optional() })

export const logsRouter = router({
  /** The newest `limit` lines (or those after `afterId`), oldest first. */
  list: tenantProcedure
    .meta({ openapi: { method: 'GET', path: '/tenants/{tenantId}/apps/{appId}/logs', tags: ['logs'], summary: 'Log lines, oldest first (after afterId, else the newest)' }, rest: { cursor: 'afterId' } })
    .input(ZLogQuery.extend({ afterId: ZCursor.optional(), limit: z.number().int().min(1).max(2000).default(500) }))
    .output(z.array(ZLogLine))
    .query(({ ctx, input: { tenantId, ...q } }) => ctx.core.telemetry.logs(ctx.actor, tenantId, q)),
  /** Follow mode: new lines as they arrive, after the client's last line id. */
  follow: tenantProcedure.input(ZLogQuery.extend({ afterId: ZCursor.or(z.literal('')).optional() })).subscription(async function* ({ ctx, input, signal }) {
    requireRole(ctx.actor, input.tenantId, 'viewer')
    let after = input.afterId || undefined
    const catchUp = async () => {
      const lines = await ctx.core.telemetry.logs(ctx.actor, input.tenantId, { appId: input.appId, instanceId: input.instanceId, afterId: after, limit: 2000 })
      if (lines.length) after = lines[lines.length - 1]!.id
      return lines
    }
    // Subscribed before the backfill, so lines written in between are picked up after it.
    for await (const _ of changesOf(ctx.bus, (c) => c.kind === 'logs' && c.appId === input.appId, signal)) {
      const lines = await catchUp()
      if (lines.length) yield lines
    }
  }),
})

export const metricsRouter = router({
  app: tenantProcedure
    .meta({ openapi: { method: 'GET', path: '/tenants/{tenantId}/apps/{appId}/metrics', tags: ['apps'], summary: 'CPU and memory of an app' } })
    .input(z.object({ appId: z.string().uuid(), minutes: z.number().int().min(1).max(60).default(15) }))
    .output(ZSeries)
    .query(({ ctx, input }) => ctx.core.telemetry.appMetrics(ctx.actor, input.tenantId, input.appId, input.minutes)),
  nodes: operatorProcedure
    .meta({ openapi: { method: 'GET', path: '/metrics/nodes', tags: ['nodes'], summary: 'Operators: CPU and memory of nodes (repeat nodeIds)' } })
    .input(z.object({ nodeIds: z.array(z.string().uuid()).max(500), minutes: z.number().int().min(1).max(60).default(15) }))
    .output(ZSeries)
    .query(({ ctx, input }) => ctx.core.telemetry.nodeMetrics(ctx.actor, input.nodeIds, input.minutes)),
})
