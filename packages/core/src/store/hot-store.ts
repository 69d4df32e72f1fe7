import type pg from 'pg'
import type { Clock } from '../clock'
import type { Prisma } from '../generated/hot/client'
import type { TInstanceReport, TObservedState } from '../protocol'
import type { Hot } from './db'
import { noteAuditMessage } from '../audit/scope'
import { createGroupCommit } from './group-commit'

export interface StatusRow extends TInstanceReport {
  tenantId: string
  nodeId: string
}

export interface NewEvent {
  tenantId?: string | null
  kind: 'audit' | 'system'
  type: string
  actorId?: string | null
  subject: string
  message: string
  data?: Prisma.InputJsonValue
}

export const TERMINAL_STATES: ReadonlySet<TObservedState> = new Set(['stopped', 'exited', 'failed'])

/**
 * The hot store: observed instance status and events (node leases and heartbeats are in
 * node-leases.ts). Status reports are group-committed: one statement per flush, whatever
 * the number of agents; a row the database refuses fails only its own writer
 * (RejectedRow), never the batch.
 */
export interface HotStoreDeps {
  hot: Hot
  hotPool: pg.Pool
  clock: Clock
  flushMs?: number
  onError(err: Error): void
}

export function createHotStore({ hot, hotPool, clock, flushMs = 50, onError }: HotStoreDeps) {
  const statuses = createGroupCommit<string, StatusRow & { at: Date }>({
    clock,
    maxDelayMs: flushMs,
    onError,
    async flush(items) {
      const r = [...items.values()]
      await hotPool.query(
        `INSERT INTO hot."InstanceStatus" ("instanceId", "tenantId", "nodeId", state, pid, restarts, "startedAt", "exitCode", message, generation, "updatedAt", ready, "healthMessage", "healthFailedAt",
           "lastExitReason", "lastExitCode", "lastExitSignal", "lastExitMessage", "lastExitAt")
         SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::hot."ObservedState"[], $5::int[], $6::int[], $7::timestamp[], $8::int[], $9::text[], $10::int[], $11::timestamp[], $12::boolean[], $13::text[], $14::timestamp[],
           $15::hot."ExitReason"[], $16::int[], $17::text[], $18::text[], $19::timestamp[])
         ON CONFLICT ("instanceId") DO UPDATE SET "tenantId" = EXCLUDED."tenantId", "nodeId" = EXCLUDED."nodeId", state = EXCLUDED.state, pid = EXCLUDED.pid,
           restarts = EXCLUDED.restarts, "startedAt" = EXCLUDED."startedAt", "exitCode" = EXCLUDED."exitCode", message = EXCLUDED.message,
           generation = EXCLUDED.generation, "updatedAt" = EXCLUDED."updatedAt", ready = EXCLUDED.ready, "healthMessage" = EXCLUDED."healthMessage",
           "healthFailedAt" = EXCLUDED."healthFailedAt", "lastExitReason" = EXCLUDED."lastExitReason", "lastExitCode" = EXCLUDED."lastExitCode",
           "lastExitSignal" = EXCLUDED."lastExitSignal", "lastExitMessage" = EXCLUDED."lastExitMessage", "lastExitAt" = EXCLUDED."lastExitAt"`,
        [
          r.map((x) => x.instanceId),
          r.map((x) => x.tenantId),
          r.map((x) => x.nodeId),
          r.map((x) => x.state),
          r.map((x) => x.pid),
          r.map((x) => x.restarts),
          r.map((x) => x.startedAt),
          r.map((x) => x.exitCode),
          r.map((x) => x.message),
          r.map((x) => x.generation),
          r.map((x) => x.at.toISOString()),
          r.map((x) => x.health?.ready ?? null),
          r.map((x) => x.health?.lastFailure ?? null),
          r.map((x) => x.health?.lastFailureAt ?? null),
          r.map((x) => x.lastExit?.reason ?? null),
          r.map((x) => x.lastExit?.exitCode ?? null),
          r.map((x) => x.lastExit?.signal ?? null),
          r.map((x) => x.lastExit?.message ?? null),
          r.map((x) => x.lastExit?.at ?? null),
        ],
      )
    },
  })

  return {
    /** `now`: a move or rollout waits on these (a state reached): written in the next turn, not after flushMs. */
    reportStatuses: (rows: StatusRow[], o: { now?: boolean } = {}) => Promise.all(rows.map((row) => statuses.add(row.instanceId, { ...row, at: clock.now() }, o))).then(() => {}),
    async flush() {
      await statuses.drain()
    },

    nodeStatuses: (nodeIds?: string[]) => hot.nodeStatus.findMany({ where: nodeIds ? { nodeId: { in: nodeIds } } : {} }),

    // Every agent's full report asks, most often about no instance: no query for that.
    statusesOf: async (instanceIds: string[]) =>
      new Map(instanceIds.length ? (await hot.instanceStatus.findMany({ where: { instanceId: { in: instanceIds } } })).map((s) => [s.instanceId, s]) : []),
    forgetStatuses: (instanceIds: string[]) => hot.instanceStatus.deleteMany({ where: { instanceId: { in: instanceIds } } }),

    async recordVolumeUsage(nodeId: string, usage: { volumeId: string; usedBytes: number }[]) {
      if (!usage.length) return
      const at = clock.now()
      await hotPool.query(
        `INSERT INTO hot."VolumeStatus" ("volumeId", "nodeId", "usedBytes", "measuredAt") SELECT v.id, $2::uuid, v.used, $3 FROM unnest($1::uuid[], $4::bigint[]) AS v(id, used)
         ON CONFLICT ("volumeId") DO UPDATE SET "nodeId" = EXCLUDED."nodeId", "usedBytes" = EXCLUDED."usedBytes", "measuredAt" = EXCLUDED."measuredAt"`,
        [usage.map((u) => u.volumeId), nodeId, at.toISOString(), usage.map((u) => u.usedBytes)],
      )
    },
    forgetVolumeUsage: (volumeIds: string[]) => hot.volumeStatus.deleteMany({ where: { volumeId: { in: volumeIds } } }),
    volumeUsage: async (volumeIds: string[]) => new Map((await hot.volumeStatus.findMany({ where: { volumeId: { in: volumeIds } } })).map((v) => [v.volumeId, v])),

    async recordEvent(e: NewEvent) {
      const row = await hot.event.create({ data: { ...e, data: e.data ?? {} }, select: { id: true } })
      if (e.kind === 'audit') noteAuditMessage(e.message)
      return row
    },
    async recordEvents(es: NewEvent[]) {
      if (!es.length) return null
      const rows = await hot.event.createMany({ data: es.map((e) => ({ ...e, data: e.data ?? {} })) })
      for (const e of es) if (e.kind === 'audit') noteAuditMessage(e.message)
      return rows
    },
    listEvents: (tenantId: string, opts: { limit: number; beforeId?: string }) =>
      hot.event.findMany({
        where: { tenantId, ...(opts.beforeId ? { id: { lt: BigInt(opts.beforeId) } } : {}) },
        orderBy: { id: 'desc' },
        take: opts.limit,
        select: { id: true, kind: true, type: true, subject: true, message: true, actorId: true, createdAt: true },
      }),
  }
}
export type HotStore = ReturnType<typeof createHotStore>
