import pg from 'pg'
import pino from 'pino'
import { afterAll, expect, it } from 'vitest'
import { startBff, type StartedBff } from '../src/bff'
import { ZBffEnv } from '../src/config'
import { freshDatabase, waitFor } from './harness'

// Several BFFs on one database: migrations once, control loops on exactly one (the leader),
// and another takes over when the leader goes away.
const started: StartedBff[] = []
let db: Awaited<ReturnType<typeof freshDatabase>>
afterAll(async () => {
  for (const b of started) await b.stop().catch(() => {})
  await db?.drop()
})

it('runs the control loops on one BFF at a time and fails over', async () => {
  db = await freshDatabase()
  const env = ZBffEnv.parse({ DATABASE_URL: db.url, BFF_PORT: '0', BFF_HOST: '127.0.0.1', ALVEARY_OPERATOR_PASSWORD: 'operator-password' })
  const [a, b] = await Promise.all([startBff(env, { log: pino({ level: 'silent' }) }), startBff(env, { log: pino({ level: 'silent' }) })])
  started.push(a, b)
  const leaders = async () => [a, b].filter((x) => started.includes(x) && x.core.schedulerStats() !== null)
  await waitFor('one leader', async () => (await leaders()).length === 1)
  // Exactly one session holds the leader lock, so the other BFF cannot lead whenever it retries.
  const client = new pg.Client({ connectionString: db.url }).on('error', () => {})
  await client.connect()
  try {
    const { rows } = await client.query(
      `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND granted AND objid = 72707371 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
    )
    expect(rows[0].n).toBe(1)
  } finally {
    await client.end()
  }
  expect(await leaders()).toHaveLength(1)

  const [leader] = await leaders()
  const other = leader === a ? b : a
  await leader!.stop()
  started.splice(started.indexOf(leader!), 1)
  await waitFor('the other BFF takes over', async () => other.core.schedulerStats() !== null, 10_000)
  expect((await fetch(`${other.url}/healthz`)).ok).toBe(true)
})
