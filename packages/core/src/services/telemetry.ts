import { z } from 'zod'
import type { Actor } from '../auth/actor'
import { requireOperator, requireRole } from '../auth/actor'
import { createGroupCommit } from '../store/group-commit'
import type { Clock } from '../clock'
import { CoreError } from '../errors'
import type { TLogs, TMetrics } from '../protocol'
import type { ChangeBus } from '../store/change-bus'
import type { Database, Db } from '../store/db'

export const ZLogLine = z.object({
  id: z.string(),
  instanceId: z.string(),
  stream: z.enum(['stdout', 'stderr']),
  ts: z.date(),
  line: z.string(),
})
export type TLogLine = z.infer<typeof ZLogLine>

export const ZSeries = z.array(
  z.object({
    subjectId: z.string(),
    points: z.array(z.object({ ts: z.date(), cpuMillis: z.number(), memoryMb: z.number() })),
  }),
)
export type TSeries = z.infer<typeof ZSeries>

export interface TelemetryConfig {
  /** Lines kept per instance. */
  logLinesPerInstance: number
  /** How long metric samples are kept. */
  metricsRetentionMs: number
  /** At most one node sample per node per this interval (from heartbeats). */
  nodeSampleEveryMs: number
}

/**
 * Logs and metrics from agents, kept in the hot store with bounded retention, read by the
 * console. Ingest is scoped: an agent can only write lines for instances on its node.
 */
export function createTelemetryService({ database, db, bus, clock, config }: { database: Database; db: Db; bus: ChangeBus; clock: Clock; config: TelemetryConfig }) {
  const hot = database.hot
  const pool = database.hotPool
  const lastNodeSample = new Map<string, number>()
  // One insert for all nodes' samples that arrive together (a fleet acknowledging a change at once), not one each.
  const nodeSamples = createGroupCommit<string, { ts: Date; cpuMillis: number; memoryMb: number }>({
    maxDelayMs: 100,
    clock,
    flush: async (items) => {
      await hot.metricSample.createMany({ data: [...items].map(([subjectId, s]) => ({ kind: 'node' as const, subjectId, ...s })) })
    },
    onError: () => {},
  })

  const ownInstances = async (nodeId: string, ids: string[]) =>
    new Map(
      (await db.instance.findMany({ where: { id: { in: [...new Set(ids)] }, nodeId }, select: { id: true, tenantId: true, appId: true } })).map((i) => [i.id, i]),
    )

  const appOf = async (tenantId: string, appId: string) => {
    const app = await db.app.findFirst({ where: { id: appId, tenantId }, select: { id: true } })
    if (!app) throw new CoreError('NOT_FOUND', 'App not found')
  }

  return {
    async ingestLogs(nodeId: string, entries: TLogs['entries']): Promise<void> {
      if (!entries.length) return
      const mine = await ownInstances(nodeId, entries.map((e) => e.instanceId))
      const rows = entries.filter((e) => mine.has(e.instanceId))
      if (!rows.length) return
      await pool.query(
        `INSERT INTO hot."InstanceLog" ("instanceId", "tenantId", "appId", stream, ts, line)
         SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::hot."LogStream"[], $5::timestamp[], $6::text[])`,
        [
          rows.map((r) => r.instanceId),
          rows.map((r) => mine.get(r.instanceId)!.tenantId),
          rows.map((r) => mine.get(r.instanceId)!.appId),
          rows.map((r) => r.stream),
          rows.map((r) => r.ts),
          // PostgreSQL text cannot hold NUL bytes.
          rows.map((r) => r.line.replace(/\u0000/g, '')),
        ],
      )
      for (const appId of new Set(rows.map((r) => mine.get(r.instanceId)!.appId))) bus.publish({ kind: 'logs', appId })
    },

    async ingestMetrics(nodeId: string, m: Omit<TMetrics, 'type'>): Promise<void> {
      const mine = await ownInstances(nodeId, m.instances.map((i) => i.instanceId))
      const rows = m.instances.filter((i) => mine.has(i.instanceId))
      if (!rows.length) return
      await pool.query(
        `INSERT INTO hot."MetricSample" (kind, "subjectId", "appId", ts, "cpuMillis", "memoryMb")
         SELECT 'instance', * FROM unnest($1::uuid[], $2::uuid[], $3::timestamp[], $4::int[], $5::int[])`,
        [rows.map((r) => r.instanceId), rows.map((r) => mine.get(r.instanceId)!.appId), rows.map(() => m.ts), rows.map((r) => r.cpuMillis), rows.map((r) => r.memoryMb)],
      )
      for (const appId of new Set(rows.map((r) => mine.get(r.instanceId)!.appId))) bus.publish({ kind: 'metrics', appId })
    },

    /** Node usage from heartbeats, sampled. */
    async sampleNode(nodeId: string, cpuMillis: number, memoryMb: number): Promise<void> {
      const now = clock.now().getTime()
      if (now - (lastNodeSample.get(nodeId) ?? 0) < config.nodeSampleEveryMs) return
      lastNodeSample.set(nodeId, now)
      await nodeSamples.add(nodeId, { ts: new Date(now), cpuMillis, memoryMb })
    },

    /** Writes node samples still waiting for their group commit (shutdown, tests). */
    flush: () => nodeSamples.drain(),

    async logs(actor: Actor, tenantId: string, q: { appId: string; instanceId?: string; afterId?: string; limit: number }): Promise<TLogLine[]> {
      requireRole(actor, tenantId, 'viewer')
      await appOf(tenantId, q.appId)
      const where = { tenantId, appId: q.appId, ...(q.instanceId && { instanceId: q.instanceId }), ...(q.afterId && { id: { gt: BigInt(q.afterId) } }) }
      // Newest `limit` lines (or the first `limit` after a cursor), returned oldest first.
      const rows = q.afterId
        ? await hot.instanceLog.findMany({ where, orderBy: { id: 'asc' }, take: q.limit })
        : (await hot.instanceLog.findMany({ where, orderBy: { id: 'desc' }, take: q.limit })).reverse()
      return rows.map((r) => ({ id: r.id.toString(), instanceId: r.instanceId, stream: r.stream, ts: r.ts, line: r.line }))
    },

    async appMetrics(actor: Actor, tenantId: string, appId: string, minutes: number): Promise<TSeries> {
      requireRole(actor, tenantId, 'viewer')
      await appOf(tenantId, appId)
      const since = new Date(clock.now().getTime() - minutes * 60_000)
      const rows = await hot.metricSample.findMany({ where: { kind: 'instance', appId, ts: { gte: since } }, orderBy: { ts: 'asc' } })
      return group(rows)
    },

    async nodeMetrics(actor: Actor, nodeIds: string[], minutes: number): Promise<TSeries> {
      requireOperator(actor)
      const since = new Date(clock.now().getTime() - minutes * 60_000)
      const rows = await hot.metricSample.findMany({ where: { kind: 'node', subjectId: { in: nodeIds }, ts: { gte: since } }, orderBy: { ts: 'asc' } })
      return group(rows)
    },

    /** Retention: per-instance line cap and metric age. Run periodically by the leader. */
    async prune(): Promise<void> {
      await pool.query(
        `DELETE FROM hot."InstanceLog" WHERE id IN (
           SELECT id FROM (SELECT id, row_number() OVER (PARTITION BY "instanceId" ORDER BY id DESC) AS rn FROM hot."InstanceLog") AS x WHERE rn > $1)`,
        [config.logLinesPerInstance],
      )
      await hot.metricSample.deleteMany({ where: { ts: { lt: new Date(clock.now().getTime() - config.metricsRetentionMs) } } })
    },
  }
}

function group(rows: { subjectId: string; ts: Date; cpuMillis: number; memoryMb: number }[]): TSeries {
  const by = new Map<string, TSeries[number]['points']>()
  for (const r of rows) by.set(r.subjectId, [...(by.get(r.subjectId) ?? []), { ts: r.ts, cpuMillis: r.cpuMillis, memoryMb: r.memoryMb }])
  return [...by.entries()].map(([subjectId, points]) => ({ subjectId, points }))
}
export type TelemetryService = ReturnType<typeof createTelemetryService>
