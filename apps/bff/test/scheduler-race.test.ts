import { applyMigrations, HOT_SCHEMA, openDatabase, systemClock } from '@alveary/core'
import path from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { applyPlan } from '../../../packages/core/src/scheduler/apply'
import { loadNodes, loadRequests } from '../../../packages/core/src/scheduler/load'
import { createScheduler } from '../../../packages/core/src/scheduler/scheduler'
import { createHotStore } from '../../../packages/core/src/store/hot-store'
import { defaultMigrationsDir } from '../src/config'
import { freshDatabase } from './harness'

// Two schedulers (as in two BFF processes, each with its own node cache) race for the
// last slot of a node over a real PostgreSQL: one wins, the other re-plans, no over-commit.
let fresh: Awaited<ReturnType<typeof freshDatabase>>
let database: ReturnType<typeof openDatabase>
beforeAll(async () => {
  fresh = await freshDatabase()
  database = openDatabase(fresh.url)
  await applyMigrations(database.pool, defaultMigrationsDir)
  await applyMigrations(database.hotPool, path.join(defaultMigrationsDir, '../hot/migrations'), { schema: HOT_SCHEMA })
})
afterAll(async () => {
  await database?.close()
  await fresh?.drop()
})

it('two tenants racing for the last slot of a node: one wins, the other is told why', async () => {
  const db = database.prisma
  const node = await db.node.create({ data: { name: 'only', address: '127.0.0.1', cpuMillis: 1000, memoryMb: 1024, drivers: ['process'], agentVersion: 't', credentialHash: 'x' } })
  await database.hot.nodeStatus.create({ data: { nodeId: node.id, state: 'ready', connected: true } })
  const instanceOf = async (slug: string) => {
    const t = await db.tenant.create({ data: { slug, name: slug } })
    const app = await db.app.create({ data: { tenantId: t.id, name: 'a', command: 'x', cpuMillis: 600, memoryMb: 64, replicas: 1, revisions: { create: { revision: 1, spec: {}, templateHash: 'test', cause: 'created' } } } })
    return db.instance.create({ data: { tenantId: t.id, appId: app.id, ordinal: 0, generation: 1, cpuMillis: 600, memoryMb: 64 } })
  }
  const [a, b] = await Promise.all([instanceOf('ta'), instanceOf('tb')])
  const hot = createHotStore({ hot: database.hot, hotPool: database.hotPool, clock: systemClock, onError: () => {} })
  const reasons: string[] = []
  const mk = () =>
    createScheduler({
      apply: (plan, range) => applyPlan(database.pool, plan, range),
      clock: systemClock,
      config: { mode: 'parallel', workers: 1, batchSize: 10, ports: { min: 20000, max: 20100 }, backoff: { baseMs: 10, maxMs: 100 } },
      loadNodes: (ids) => loadNodes(db, hot, database.pool, ids),
      setPendingReasons: async (rows) => void reasons.push(...rows.map((r) => r.reason)),
      onPlaced: () => {},
      onError: (err) => {
        throw err
      },
    })
  const s1 = mk()
  const s2 = mk()
  await Promise.all([s1.start(), s2.start()])
  // Both caches see an empty node with room for one 600m instance.
  const [ra, rb] = [(await loadRequests(db, [a.id]))[0]!, (await loadRequests(db, [b.id]))[0]!]
  s1.enqueue([ra])
  s2.enqueue([rb])
  await Promise.all([s1.idle(), s2.idle()])
  await Promise.all([s1.stop(), s2.stop()])

  const placed = await db.instance.findMany({ where: { nodeId: node.id } })
  expect(placed).toHaveLength(1)
  expect(s1.stats().placed + s2.stats().placed).toBe(1)
  expect(s1.stats().conflicts + s2.stats().conflicts).toBe(1)
  expect(reasons).toEqual(['1 node: insufficient cpu: 400m free, 600m asked'])
  expect(await db.instance.count({ where: { nodeId: null } })).toBe(1)
})
