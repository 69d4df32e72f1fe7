import { createHash, randomUUID } from 'node:crypto'
import { readdir, readFile } from 'node:fs/promises'
import path from 'node:path'
import type pg from 'pg'

// Same table Prisma's migrate engine keeps, so `prisma migrate status` reads our history.
const HISTORY_DDL = `CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
  "id" VARCHAR(36) PRIMARY KEY NOT NULL,
  "checksum" VARCHAR(64) NOT NULL,
  "finished_at" TIMESTAMPTZ,
  "migration_name" VARCHAR(255) NOT NULL,
  "logs" TEXT,
  "rolled_back_at" TIMESTAMPTZ,
  "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(),
  "applied_steps_count" INTEGER NOT NULL DEFAULT 0
)`
// One migrator per (database, schema) at a time across BFF processes.
const lockKey = (schema: string) => 72707369 + [...schema].reduce((h, c) => (h * 31 + c.charCodeAt(0)) % 100_000, 0)

export interface MigrationResult {
  applied: string[]
  total: number
}

/**
 * Applies pending prisma/migrations/<name>/migration.sql in name order, each in its own
 * transaction, under a session advisory lock so several BFFs can start at once.
 * Prisma's schema engine is a native download we cannot rely on (air-gapped installs).
 */
export async function applyMigrations(pool: pg.Pool, migrationsDir: string, opts: { schema?: string } = {}): Promise<MigrationResult> {
  const schema = opts.schema ?? 'public'
  const LOCK_KEY = lockKey(schema)
  const names = (await readdir(migrationsDir, { withFileTypes: true }))
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort()
  const client = await pool.connect()
  try {
    await client.query('SELECT pg_advisory_lock($1)', [LOCK_KEY])
    // Each schema keeps its own history table, as Prisma does with ?schema=.
    await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema.replace(/"/g, '')}"`)
    await client.query(`SET search_path TO "${schema.replace(/"/g, '')}"`)
    await client.query(HISTORY_DDL)
    const { rows } = await client.query<{ migration_name: string; checksum: string; finished_at: Date | null; rolled_back_at: Date | null }>(
      'SELECT migration_name, checksum, finished_at, rolled_back_at FROM "_prisma_migrations"',
    )
    const failed = rows.find((r) => !r.finished_at && !r.rolled_back_at)
    if (failed) throw new Error(`migration ${failed.migration_name} failed earlier; resolve it before starting (see README)`)
    const done = new Set(rows.filter((r) => r.finished_at).map((r) => r.migration_name))
    const applied: string[] = []
    for (const name of names) {
      if (done.has(name)) continue
      const sql = await readFile(path.join(migrationsDir, name, 'migration.sql'), 'utf8')
      const checksum = createHash('sha256').update(sql).digest('hex')
      const id = randomUUID()
      await client.query('BEGIN')
      try {
        await client.query(sql)
        await client.query(
          `INSERT INTO "_prisma_migrations" (id, checksum, migration_name, started_at, finished_at, applied_steps_count) VALUES ($1, $2, $3, now(), now(), 1)`,
          [id, checksum, name],
        )
        await client.query('COMMIT')
      } catch (err) {
        await client.query('ROLLBACK')
        throw new Error(`migration ${name} failed: ${(err as Error).message}`)
      }
      applied.push(name)
    }
    return { applied, total: names.length }
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [LOCK_KEY]).catch(() => {})
    await client.query('RESET search_path').catch(() => {})
    client.release()
  }
}
