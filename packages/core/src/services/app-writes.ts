/**
 * Writes to an app serialize on its row. Every such transaction locks the tenant's row first
 * (quota admission needs it) and then the app's: one order everywhere, so two writes never
 * deadlock. A write that waits longer than LOCK_WAIT_MS behind others answers CONFLICT
 * (try again) instead of queueing on until its transaction times out.
 */
import { CoreError } from '../errors'
import type { Db, Tx } from '../store/db'

const LOCK_WAIT_MS = 10_000
/** Longer than any lock wait plus the work, so a slow database shows as itself, not as a timeout. */
const TX_OPTIONS = { maxWait: 10_000, timeout: 30_000 }

/** PostgreSQL's answers to writes that collided: lock_not_available, deadlock_detected, serialization_failure. */
const COLLISIONS = new Set(['55P03', '40P01', '40001'])

function collided(err: unknown): boolean {
  const e = err as { code?: string; meta?: { code?: string; driverAdapterError?: { cause?: { originalCode?: string } } } }
  // P2034: Prisma's own "write conflict or deadlock"; P2010: a raw query failed with PostgreSQL's code.
  if (e?.code === 'P2034') return true
  const pg = e?.meta?.code ?? e?.meta?.driverAdapterError?.cause?.originalCode
  return !!pg && COLLISIONS.has(pg)
}

/** Locks the tenant and then the app, in the transaction. */
export async function lockApp(tx: Tx, tenantId: string, appId: string): Promise<void> {
  await tx.$executeRawUnsafe(`SET LOCAL lock_timeout = '${LOCK_WAIT_MS}ms'`)
  await tx.$queryRaw`SELECT id FROM "Tenant" WHERE id = ${tenantId}::uuid FOR UPDATE`
  await tx.$queryRaw`SELECT id FROM "App" WHERE id = ${appId}::uuid AND "tenantId" = ${tenantId}::uuid FOR UPDATE`
}

/** Runs `fn` in a transaction that holds the app (see lockApp); a collision with another write is a CONFLICT. */
export async function writeApp<T>(db: Db, tenantId: string, appId: string, fn: (tx: Tx) => Promise<T>): Promise<T> {
  try {
    return await db.$transaction(async (tx) => {
      await lockApp(tx, tenantId, appId)
      return fn(tx)
    }, TX_OPTIONS)
  } catch (err) {
    if (collided(err)) throw new CoreError('CONFLICT', 'The app is being changed by another request; try again')
    throw err
  }
}
