import { applyMigrations } from '@alveary/core'
import pg from 'pg'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { defaultMigrationsDir } from '../src/config'
import { freshDatabase } from './harness'

let db: Awaited<ReturnType<typeof freshDatabase>>
beforeAll(async () => {
  db = await freshDatabase()
})
afterAll(async () => {
  await db?.drop()
})

it('applies migrations once when several BFFs start at the same moment, recording them like Prisma', async () => {
  const pools = [0, 1, 2].map(() => new pg.Pool({ connectionString: db.url, max: 2 }).on('error', () => {}))
  try {
    const results = await Promise.all(pools.map((p) => applyMigrations(p, defaultMigrationsDir)))
    const applied = results.flatMap((r) => r.applied)
    expect(applied.length).toBe(results[0]!.total)
    expect(new Set(applied).size).toBe(applied.length)
    const { rows } = await pools[0]!.query('SELECT migration_name, checksum, finished_at, applied_steps_count FROM "_prisma_migrations" ORDER BY migration_name')
    expect(rows).toHaveLength(results[0]!.total)
    for (const r of rows) {
      expect(r.checksum).toMatch(/^[0-9a-f]{64}$/)
      expect(r.finished_at).not.toBeNull()
      expect(r.applied_steps_count).toBe(1)
    }
    // Up to date: nothing more to do.
    expect((await applyMigrations(pools[0]!, defaultMigrationsDir)).applied).toEqual([])
    const { rows: tables } = await pools[0]!.query(`SELECT count(*)::int AS n FROM information_schema.tables WHERE table_name IN ('Tenant','App','Instance','Node')`)
    expect(tables[0].n).toBe(4)
  } finally {
    await Promise.all(pools.map((p) => p.end()))
  }
})
