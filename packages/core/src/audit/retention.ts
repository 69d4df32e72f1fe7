import type { Clock } from '../clock'
import type { Controller } from '../controllers/registry'
import type { Db } from '../store/db'

const DAY_MS = 86_400_000
/** Rows removed per statement: a first run over years of rows does not hold one long transaction. */
const BATCH = 5_000

/**
 * Audit retention: the leader's housekeeping removes rows older than `days`, every hour.
 * The table stays append-only for everything else: its trigger lets a DELETE through only
 * inside the SQL function audit_record_expire(cutoff, max_rows) and only of rows older than
 * that cutoff (migration 20261203150000_audit_retention). UPDATE, TRUNCATE and plain DELETE
 * are still refused.
 */
export function createAuditRetention({ db, clock, days }: { db: Db; clock: Clock; days: number }) {
  /** Removes every row older than the retention; returns how many. */
  async function expire(): Promise<number> {
    const cutoff = new Date(clock.now().getTime() - days * DAY_MS).toISOString()
    let total = 0
    for (;;) {
      const [row] = await db.$queryRaw<{ n: number }[]>`SELECT "audit_record_expire"((${cutoff}::timestamptz AT TIME ZONE 'UTC')::timestamp(3), ${BATCH}::integer) AS n`
      total += row?.n ?? 0
      if ((row?.n ?? 0) < BATCH) return total
    }
  }
  const controller: Controller = { name: 'audit-expire', handle: () => expire().then(() => {}), periodic: { everyMs: 3_600_000, priority: 'low', ids: () => [undefined] } }
  return { expire, controller }
}
