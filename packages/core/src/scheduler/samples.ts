import type pg from 'pg'
import { z } from 'zod'
import { requireOperator, type Actor } from '../auth/actor'
import type { Clock } from '../clock'
import type { Controller } from '../controllers/registry'
import type { ChangeBus } from '../store/change-bus'
import type { PlacementSample } from './placement-stats'

export const ZSchedulerSeries = z.array(z.object({ at: z.date(), tenantId: z.string(), placed: z.number(), p50Ms: z.number(), p99Ms: z.number() }))
export type TSchedulerSeries = z.infer<typeof ZSchedulerSeries>

/** Samples are kept this long; the console shows up to the last hour. */
const RETENTION_MS = 3_600_000

/**
 * Time-to-placement per tenant, persisted: the leader's scheduler measures it in memory
 * (placement-stats.ts) and this controller writes the buckets that have ended to the hot
 * store every 10 s, so every BFF (not only the leader) can draw the chart and it survives
 * a leader change. A `scheduler` change tells the consoles to re-read.
 */
export function createSchedulerSamples({ hotPool, bus, clock, take }: { hotPool: pg.Pool; bus: ChangeBus; clock: Clock; take: () => PlacementSample[] }) {
  async function flush() {
    const rows = take()
    if (rows.length)
      await hotPool.query(
        `INSERT INTO hot."SchedulerSample" (at, "tenantId", placed, "p50Ms", "p99Ms") SELECT * FROM unnest($1::timestamp[], $2::uuid[], $3::int[], $4::int[], $5::int[])`,
        [rows.map((r) => r.at.toISOString()), rows.map((r) => r.tenantId), rows.map((r) => r.placed), rows.map((r) => r.p50Ms), rows.map((r) => r.p99Ms)],
      )
    await hotPool.query(`DELETE FROM hot."SchedulerSample" WHERE at < $1`, [new Date(clock.now().getTime() - RETENTION_MS).toISOString()])
    if (rows.length) bus.publish({ kind: 'scheduler' })
  }

  const controller: Controller = { name: 'scheduler-samples', handle: flush, periodic: { everyMs: 10_000, priority: 'low', ids: () => [undefined] } }

  return {
    controller,
    /** Placements and time-to-placement per tenant over the last `minutes`, oldest first. */
    async series(actor: Actor, minutes: number): Promise<TSchedulerSeries> {
      requireOperator(actor)
      const { rows } = await hotPool.query<TSchedulerSeries[number]>(
        `SELECT at, "tenantId", placed, "p50Ms", "p99Ms" FROM hot."SchedulerSample" WHERE at >= $1 ORDER BY at, "tenantId"`,
        [new Date(clock.now().getTime() - minutes * 60_000).toISOString()],
      )
      return rows
    },
  }
}
