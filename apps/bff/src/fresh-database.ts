import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import pg from 'pg'
import { startEmbeddedPostgres } from './embedded-db'

/**
 * A fresh, empty database for one test file or benchmark: on the PostgreSQL server at
 * TEST_DATABASE_URL (default postgres@127.0.0.1:5432) when it answers, else on a throwaway
 * embedded PostgreSQL. TEST_DATABASE_URL=embedded always uses an embedded one.
 */
export async function freshDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const configured = process.env.TEST_DATABASE_URL
  if (configured === 'embedded') return embeddedDatabase()
  const admin = configured ?? 'postgresql://postgres@127.0.0.1:5432/postgres'
  const name = `alveary_t_${randomBytes(6).toString('hex')}`
  const client = new pg.Client({ connectionString: admin, connectionTimeoutMillis: 2000 })
  client.on('error', () => {}) // connect() and query() report failures
  try {
    await client.connect()
  } catch (err) {
    await client.end().catch(() => {})
    if (configured) throw err
    return embeddedDatabase()
  }
  try {
    await client.query(`CREATE DATABASE ${name}`)
  } finally {
    await client.end().catch(() => {})
  }
  const url = new URL(admin)
  url.pathname = `/${name}`
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: admin })
      c.on('error', () => {})
      await c.connect()
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      } finally {
        await c.end().catch(() => {})
      }
    },
  }
}

async function embeddedDatabase() {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'alveary-pg-'))
  try {
    const server = await startEmbeddedPostgres({ databaseDir: path.join(dir, 'data'), port: await freePort(), database: 'alveary_test', durable: false })
    return {
      url: server.url,
      async drop() {
        await server.stop()
        await rm(dir, { recursive: true, force: true })
      },
    }
  } catch (err) {
    await rm(dir, { recursive: true, force: true })
    throw err
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo
      srv.close(() => resolve(port))
    })
  })
}
