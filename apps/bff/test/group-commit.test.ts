import { randomUUID } from 'node:crypto'
import path from 'node:path'
import { applyMigrations, createHotStore, HOT_SCHEMA, openDatabase, RejectedRow, systemClock, type Database } from '@alveary/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { defaultMigrationsDir } from '../src/config'
import { freshDatabase } from './harness'

// The group commit on real PostgreSQL: a row the database refuses fails only its own writer.
let db: Awaited<ReturnType<typeof freshDatabase>>
let database: Database
const errors: Error[] = []

beforeAll(async () => {
  db = await freshDatabase()
  database = openDatabase(db.url)
  await applyMigrations(database.hotPool, path.join(defaultMigrationsDir, '../hot/migrations'), { schema: HOT_SCHEMA })
})
afterAll(async () => {
  await database?.close()
  await db?.drop()
})

const store = () => createHotStore({ hot: database.hot, hotPool: database.hotPool, clock: systemClock, flushMs: 20, onError: (e) => errors.push(e) })

describe('group commit isolation', () => {
  it('writes the good heartbeats of a batch that holds an out-of-range one, and rejects only that one', async () => {
    const hot = store()
    const ids = [randomUUID(), randomUUID(), randomUUID()]
    for (const id of ids) await hot.nodeConnected(id)
    const at = new Date()
    const results = await Promise.allSettled([
      hot.heartbeat(ids[0]!, { cpuUsedMillis: 10, memoryUsedMb: 1, appliedGeneration: 1, at }),
      hot.heartbeat(ids[1]!, { cpuUsedMillis: 2 ** 31, memoryUsedMb: 1, appliedGeneration: 1, at }),
      hot.heartbeat(ids[2]!, { cpuUsedMillis: 30, memoryUsedMb: 1, appliedGeneration: 1, at }),
    ])
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled'])
    expect((results[1] as PromiseRejectedResult).reason).toBeInstanceOf(RejectedRow)
    const rows = new Map((await hot.nodeStatuses(ids)).map((s) => [s.nodeId, s.cpuUsedMillis]))
    expect([rows.get(ids[0]!), rows.get(ids[1]!), rows.get(ids[2]!)]).toEqual([10, 0, 30])
  })

  it('rejects a status row with a NUL in its message and writes the rest of the batch', async () => {
    const hot = store()
    const node = randomUUID()
    const row = (message: string) => ({ instanceId: randomUUID(), tenantId: randomUUID(), nodeId: node, state: 'running' as const, pid: 1, restarts: 0, startedAt: null, exitCode: null, message, generation: 1 })
    const good = [row('fine'), row('also fine')]
    const bad = row('bad\u0000byte')
    const results = await Promise.allSettled([hot.reportStatuses([good[0]!]), hot.reportStatuses([bad]), hot.reportStatuses([good[1]!])])
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled'])
    const written = await hot.statusesOf([...good, bad].map((r) => r.instanceId))
    expect([...written.keys()].sort()).toEqual(good.map((r) => r.instanceId).sort())
  })

  it('fails every writer (not as rejected rows) when the store itself is unreachable', async () => {
    const broken = openDatabase(db.url.replace(/:\d+\//, ':1/'))
    try {
      const hot = createHotStore({ hot: broken.hot, hotPool: broken.hotPool, clock: systemClock, flushMs: 10, onError: () => {} })
      const results = await Promise.allSettled([randomUUID(), randomUUID()].map((id) => hot.heartbeat(id, { cpuUsedMillis: 1, memoryUsedMb: 1, appliedGeneration: 0, at: new Date() })))
      expect(results.every((r) => r.status === 'rejected' && !(r.reason instanceof RejectedRow))).toBe(true)
    } finally {
      await broken.close()
    }
  })
})
