import { applyMigrations, HOT_SCHEMA, openDatabase, systemClock } from '@alveary/core'
import path from 'node:path'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { applyPlan, type Planned } from '../../../packages/core/src/scheduler/apply'
import { loadNodes, loadRequests } from '../../../packages/core/src/scheduler/load'
import { createScheduler, type SchedulerConfig } from '../../../packages/core/src/scheduler/scheduler'
import type { PortRange } from '../../../packages/core/src/scheduler/types'
import { defaultMigrationsDir } from '../src/config'
import { freshDatabase } from './harness'

// Schedulers (as in several BFF processes, each with its own node cache) over a real
// PostgreSQL: the plan applier re-checks every filter against fresh rows, so a node never
// gets more than it can hold nor anything it stopped accepting between plan and commit.
let fresh: Awaited<ReturnType<typeof freshDatabase>>
let database: ReturnType<typeof openDatabase>
beforeAll(async () => {
  fresh = await freshDatabase()
  database = openDatabase(fresh.url, { max: 24 })
  await applyMigrations(database.pool, defaultMigrationsDir)
  await applyMigrations(database.hotPool, path.join(defaultMigrationsDir, '../hot/migrations'), { schema: HOT_SCHEMA })
})
afterAll(async () => {
  await database?.close()
  await fresh?.drop()
})
beforeEach(async () => {
  await database.pool.query('TRUNCATE "Instance", "App", "Tenant", "Node" CASCADE')
  await database.hotPool.query('TRUNCATE hot."NodeStatus"')
})

const source = () => ({ pool: database.pool, hotPool: database.hotPool })
const PORTS = { min: 20000, max: 20100 }

async function addNode(name: string, over: { cpuMillis?: number; memoryMb?: number; labels?: Record<string, string>; drivers?: ('process' | 'docker')[] } = {}) {
  const node = await database.prisma.node.create({
    data: { name, address: '127.0.0.1', cpuMillis: over.cpuMillis ?? 1000, memoryMb: over.memoryMb ?? 1024, drivers: over.drivers ?? ['process'], labels: over.labels ?? {}, agentVersion: 't', credentialHash: 'x' },
  })
  await database.hot.nodeStatus.create({ data: { nodeId: node.id, state: 'ready', connected: true } })
  return node
}

async function addApp(slug: string, replicas: number, app: { cpuMillis?: number; spread?: 'none' | 'soft' | 'hard'; nodeSelector?: Record<string, string> } = {}) {
  const db = database.prisma
  const t = await db.tenant.upsert({ where: { slug }, create: { slug, name: slug, runAsUid: 200_000 + ([...slug].reduce((h, c) => h * 31 + c.charCodeAt(0), 0) % 90_000) }, update: {} })
  const cpuMillis = app.cpuMillis ?? 100
  const a = await db.app.create({ data: { tenantId: t.id, name: `a${replicas}`, command: 'x', cpuMillis, memoryMb: 64, replicas, spread: app.spread ?? 'soft', nodeSelector: app.nodeSelector ?? {}, ports: [{ name: 'http' }], revisions: { create: { revision: 1, spec: {}, templateHash: 'test', cause: 'created' } } } })
  await db.instance.createMany({ data: Array.from({ length: replicas }, (_, ordinal) => ({ tenantId: t.id, appId: a.id, ordinal, generation: 1, cpuMillis, memoryMb: 64 })) })
  return t
}

function mk(opts: { config?: Partial<SchedulerConfig>; reasons?: string[]; apply?: (plan: readonly Planned[], ports: PortRange) => ReturnType<typeof applyPlan> } = {}) {
  return createScheduler({
    apply: opts.apply ?? ((plan, range) => applyPlan(source(), plan, range)),
    clock: systemClock,
    config: { mode: 'parallel', workers: 4, batchSize: 512, ports: PORTS, backoff: { baseMs: 10, maxMs: 100 }, ...opts.config },
    loadNodes: (ids) => loadNodes(source(), ids),
    setPendingReasons: async (rows) => void opts.reasons?.push(...rows.map((r) => r.reason)),
    onPlaced: () => {},
    onError: (err) => {
      throw err
    },
  })
}

/** Nodes holding more than their capacity, and host ports given out twice on one node. */
async function overcommits() {
  const { rows } = await database.pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM (
       SELECT n.id FROM "Node" n JOIN "Instance" i ON i."nodeId" = n.id AND i."releasedAt" IS NULL
       GROUP BY n.id HAVING sum(i."cpuMillis") > min(n."cpuMillis") OR sum(i."memoryMb") > min(n."memoryMb")
       UNION ALL
       SELECT i."nodeId" FROM "Instance" i, unnest(i."hostPorts") p WHERE i."nodeId" IS NOT NULL GROUP BY i."nodeId", p HAVING count(*) > 1
     ) x`,
  )
  return rows[0]!.n
}

describe('plan applier', () => {
  it('two tenants racing for the last slot of a node: one wins, the other is told why', async () => {
    const node = await addNode('only')
    await addApp('ta', 1, { cpuMillis: 600 })
    await addApp('tb', 1, { cpuMillis: 600 })
    const [ra, rb] = await loadRequests(database.pool)
    const reasons: string[] = []
    const s1 = mk({ reasons, config: { workers: 1 } })
    const s2 = mk({ reasons, config: { workers: 1 } })
    await Promise.all([s1.start(), s2.start()])
    // Both caches see an empty node with room for one 600m instance.
    s1.enqueue([ra!])
    s2.enqueue([rb!])
    await Promise.all([s1.idle(), s2.idle()])
    await Promise.all([s1.stop(), s2.stop()])

    expect(await database.prisma.instance.count({ where: { nodeId: node.id } })).toBe(1)
    expect(s1.stats().placed + s2.stats().placed).toBe(1)
    expect(s1.stats().conflicts + s2.stats().conflicts).toBe(1)
    expect(reasons).toEqual(['1 node: insufficient cpu: 400m free, 600m asked'])
    expect(await database.prisma.instance.count({ where: { nodeId: null } })).toBe(1)
  })

  it('two BFFs planning the same 1,500 instances at full speed for room of 1,000: 1,000 placed once each, no over-commit', async () => {
    // 20 nodes with room for 50 instances of 100m each.
    for (let i = 0; i < 20; i++) await addNode(`n${String(i).padStart(2, '0')}`, { cpuMillis: 5000, memoryMb: 64 * 1000 })
    for (let t = 0; t < 10; t++) await addApp(`t${t}`, 150)
    const all = await loadRequests(database.pool)
    expect(all).toHaveLength(1500)
    const s1 = mk()
    const s2 = mk()
    await Promise.all([s1.start(), s2.start()])
    // As after a leader change: both see every pending instance.
    s1.enqueue(all)
    s2.enqueue([...all].reverse())
    await Promise.all([s1.idle(), s2.idle()])
    await Promise.all([s1.stop(), s2.stop()])

    expect(await overcommits()).toBe(0)
    expect(await database.prisma.instance.count({ where: { nodeId: { not: null } } })).toBe(1000)
    expect(s1.stats().placed + s2.stats().placed).toBe(1000)
    const perNode = await database.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM "Instance" WHERE "nodeId" IS NOT NULL GROUP BY "nodeId"`)
    expect(perNode.rows.map((r) => r.n)).toEqual(Array(20).fill(50))
  })

  it('a node cordoned, NotReady, dedicated to another tenant, without the driver or the label between plan and commit receives nothing', async () => {
    const nodes = await Promise.all(['a', 'b', 'c', 'd', 'e'].map((n) => addNode(n, { labels: { zone: 'z1' } })))
    const other = await database.prisma.tenant.create({ data: { slug: 'other', name: 'other', runAsUid: 299_999 } })
    // Hard spread: one replica per node, so every node gets one planned placement.
    await addApp('t', 5, { spread: 'hard', nodeSelector: { zone: 'z1' } })
    const [a, b, c, d, e] = nodes.map((n) => n.id)
    const reasons: string[] = []
    let planned: readonly Planned[] = []
    let changed = false
    const s = mk({
      reasons,
      config: { workers: 1 },
      async apply(plan, range) {
        if (!changed) {
          changed = true
          planned = plan
          // After planning, before the applier runs: every node stops accepting this instance.
          await database.prisma.node.update({ where: { id: a }, data: { schedulable: false } })
          await database.hot.nodeStatus.update({ where: { nodeId: b! }, data: { state: 'not_ready' } })
          await database.prisma.node.update({ where: { id: c }, data: { dedicatedTenantId: other.id } })
          await database.prisma.node.update({ where: { id: d }, data: { drivers: ['docker'] } })
          await database.prisma.node.update({ where: { id: e }, data: { labels: { zone: 'z2' } } })
        }
        return applyPlan(source(), plan, range)
      },
    })
    await s.start()
    s.enqueue(await loadRequests(database.pool))
    await s.idle()
    await s.stop()

    expect(new Set(planned.map((p) => p.nodeId))).toEqual(new Set([a, b, c, d, e]))
    expect(await database.prisma.instance.count({ where: { nodeId: { not: null } } })).toBe(0)
    expect(s.stats()).toMatchObject({ placed: 0, conflicts: 5 })
    expect(reasons.at(-1)!.split('; ').sort()).toEqual(
      ['1 node: dedicated to another tenant', '1 node: label zone=z1 missing', '1 node: no process driver', '1 node: node cordoned or draining', '1 node: node not ready'].sort(),
    )
    // Nothing was committed, so no node's desired generation moved.
    expect((await database.prisma.node.findMany({ select: { desiredGeneration: true } })).map((n) => n.desiredGeneration)).toEqual([1, 1, 1, 1, 1])
  })
})
