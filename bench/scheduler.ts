/**
 * npm run bench:scheduler -- [--nodes 5000] [--tenants 100] [--instances 50000] [--batch 512] [--workers 4]
 *
 * Simulated nodes and tenants, in-process, over the real scheduler code and a real
 * PostgreSQL (the local server, or an embedded one). Measures placements/s end to end
 * including persistence, time-to-placement of a small tenant while a large one floods,
 * and over-commits (must be 0), for the parallel per-tenant scheduler and, in the same
 * run, the serial single-queue mode. Ends with one line of JSON.
 */
import { parseArgs } from 'node:util'
import os from 'node:os'
import path from 'node:path'
import { applyMigrations, HOT_SCHEMA, openDatabase, systemClock } from '@alveary/core'
import { applyPlan } from '../packages/core/src/scheduler/apply'
import { loadNodes, loadRequests } from '../packages/core/src/scheduler/load'
import { createScheduler } from '../packages/core/src/scheduler/scheduler'
import type { PlacementRequest } from '../packages/core/src/scheduler/types'
import { createHotStore } from '../packages/core/src/store/hot-store'
import { freshDatabase } from '../apps/bff/src/fresh-database'
import { z } from 'zod'

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '5000' },
    tenants: { type: 'string', default: '100' },
    instances: { type: 'string', default: '50000' },
    batch: { type: 'string', default: '512' },
    workers: { type: 'string', default: '4' },
    'small-every-ms': { type: 'string', default: '20' },
  },
})
const opts = z
  .object({
    nodes: z.coerce.number().int().min(1),
    tenants: z.coerce.number().int().min(2),
    instances: z.coerce.number().int().min(10),
    batch: z.coerce.number().int().min(1),
    workers: z.coerce.number().int().min(1),
    'small-every-ms': z.coerce.number().int().min(1),
  })
  .parse(values)

const root = path.resolve(import.meta.dirname, '..')
const log = (s: string) => process.stderr.write(`${s}\n`)
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! : 0
}

const fresh = await freshDatabase()
const database = openDatabase(fresh.url, { max: 16 })
try {
  await applyMigrations(database.pool, path.join(root, 'prisma/migrations'))
  await applyMigrations(database.hotPool, path.join(root, 'prisma/hot/migrations'), { schema: HOT_SCHEMA })
  const pool = database.pool
  log(`seeding ${opts.nodes} nodes, ${opts.tenants} tenants, ${opts.instances} instances…`)

  // Nodes: 16 cores, 64 GiB each; all ready.
  const nodeIds = (
    await pool.query<{ id: string }>(
      `INSERT INTO "Node" (id, name, address, "cpuMillis", "memoryMb", drivers, "agentVersion", "credentialHash")
       SELECT gen_random_uuid(), 'node-' || lpad(g::text, 5, '0'), '10.0.0.1', 16000, 65536, '{process}', 'bench', md5(g::text) FROM generate_series(1, $1) g RETURNING id`,
      [opts.nodes],
    )
  ).rows.map((r) => r.id)
  await database.hotPool.query(`INSERT INTO hot."NodeStatus" ("nodeId", state, connected, "lastHeartbeatAt") SELECT unnest($1::uuid[]), 'ready', true, now()`, [nodeIds])

  // Tenant 0 is the large one (40% of instances), tenant 1 the small one measured, the rest share the remainder.
  const tenants = (
    await pool.query<{ id: string }>(`INSERT INTO "Tenant" (id, slug, name) SELECT gen_random_uuid(), 't' || g, 'Tenant ' || g FROM generate_series(0, $1 - 1) g RETURNING id`, [opts.tenants])
  ).rows.map((r) => r.id)
  const big = Math.floor(opts.instances * 0.4)
  const perOther = Math.floor((opts.instances - big) / (opts.tenants - 2))
  const apps: { tenantId: string; id: string; replicas: number }[] = []
  for (let t = 0; t < tenants.length; t++) {
    if (t === 1) continue
    const replicas = t === 0 ? big : perOther
    const { rows } = await pool.query<{ id: string }>(
      `INSERT INTO "App" (id, "tenantId", name, command, "cpuMillis", "memoryMb", replicas, ports, "updatedAt") VALUES (gen_random_uuid(), $1, 'app', 'sleep', 100, 128, $2, '[{"name":"http"}]', now()) RETURNING id`,
      [tenants[t], replicas],
    )
    apps.push({ tenantId: tenants[t]!, id: rows[0]!.id, replicas })
  }
  // Instances run revision 1 of their app.
  await pool.query(`INSERT INTO "AppRevision" (id, "appId", revision, spec, "templateHash", cause) SELECT gen_random_uuid(), id, 1, '{}', 'bench', 'created' FROM "App"`)
  for (const a of apps)
    await pool.query(
      `INSERT INTO "Instance" (id, "tenantId", "appId", ordinal, generation, "cpuMillis", "memoryMb", priority) SELECT gen_random_uuid(), $1, $2, g, 1, 100, 128, 100 FROM generate_series(0, $3 - 1) g`,
      [a.tenantId, a.id, a.replicas],
    )
  const small = (await pool.query<{ id: string }>(`INSERT INTO "App" (id, "tenantId", name, command, "cpuMillis", "memoryMb", replicas, ports, "updatedAt") VALUES (gen_random_uuid(), $1, 'small', 'sleep', 100, 128, 0, '[{"name":"http"}]', now()) RETURNING id`, [tenants[1]])).rows[0]!.id
  await pool.query(`INSERT INTO "AppRevision" (id, "appId", revision, spec, "templateHash", cause) VALUES (gen_random_uuid(), $1, 1, '{}', 'bench', 'created')`, [small])
  // Fresh tables have no statistics yet; production tables are analysed by autovacuum.
  await pool.query('ANALYZE')
  await database.hotPool.query('ANALYZE')
  const hot = createHotStore({ hot: database.hot, hotPool: database.hotPool, clock: systemClock, onError: () => {} })
  const requests = await loadRequests(database.prisma)
  const total = requests.length
  log(`seeded; ${total} instances to place`)

  async function run(mode: 'parallel' | 'serial') {
    await pool.query(`UPDATE "Instance" SET "nodeId" = NULL, "hostPorts" = '{}', "pendingReason" = NULL`)
    await pool.query(`DELETE FROM "Instance" WHERE "appId" = $1`, [small])
    const enqueuedAt = new Map<string, number>()
    const smallTtp: number[] = []
    let placed = 0
    const s = createScheduler({
      apply: (plan, range) => applyPlan(pool, plan, range),
      clock: systemClock,
      config: { mode, workers: opts.workers, batchSize: opts.batch, ports: { min: 20000, max: 29999 }, backoff: { baseMs: 50, maxMs: 1000 } },
      loadNodes: (ids) => loadNodes(database.prisma, hot, pool, ids),
      setPendingReasons: async () => {},
      onPlaced(p) {
        placed += p.length
        const now = performance.now()
        for (const x of p) {
          const t = enqueuedAt.get(x.instanceId)
          if (t !== undefined) smallTtp.push(now - t)
        }
      },
      onError: (err) => log(`scheduler error: ${err.message}`),
    })
    await s.start()
    const t0 = performance.now()
    s.enqueue(requests)
    // The small tenant deploys one instance at a time while the flood is being placed.
    let ordinal = 0
    const smallTimer = setInterval(async () => {
      const { rows } = await pool.query<{ id: string }>(
        `INSERT INTO "Instance" (id, "tenantId", "appId", ordinal, generation, "cpuMillis", "memoryMb", priority) VALUES (gen_random_uuid(), $1, $2, $3, 1, 100, 128, 100) RETURNING id`,
        [tenants[1], small, ordinal++],
      )
      const req: PlacementRequest = { instanceId: rows[0]!.id, tenantId: tenants[1]!, appId: small, driver: 'process', cpuMillis: 100, memoryMb: 128, portCount: 1, nodeSelector: {}, spread: 'soft', strategy: 'spread', priority: 100 }
      enqueuedAt.set(req.instanceId, performance.now())
      s.enqueue([req])
    }, opts['small-every-ms'])
    while (placed < total) await new Promise((r) => setTimeout(r, 5))
    const elapsed = (performance.now() - t0) / 1000
    clearInterval(smallTimer)
    await new Promise((r) => setTimeout(r, 50))
    await s.idle()
    await s.stop()
    const over = await pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM (
         SELECT n.id FROM "Node" n JOIN "Instance" i ON i."nodeId" = n.id AND i."releasedAt" IS NULL
         GROUP BY n.id, n."cpuMillis", n."memoryMb" HAVING sum(i."cpuMillis") > n."cpuMillis" OR sum(i."memoryMb") > n."memoryMb"
         UNION ALL
         SELECT i."nodeId" FROM "Instance" i, unnest(i."hostPorts") p WHERE i."nodeId" IS NOT NULL GROUP BY i."nodeId", p HAVING count(*) > 1
       ) x`,
    )
    const persisted = (await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM "Instance" WHERE "nodeId" IS NOT NULL AND "appId" <> $1`, [small])).rows[0]!.n
    const stats = s.stats()
    return {
      placementsPerSec: Math.round(total / elapsed),
      seconds: Number(elapsed.toFixed(2)),
      persisted,
      overcommits: over.rows[0]!.n,
      conflicts: stats.conflicts,
      smallTenantSamples: smallTtp.length,
      smallTenantP50Ms: Math.round(pct(smallTtp, 50)),
      smallTenantP99Ms: Math.round(pct(smallTtp, 99)),
    }
  }

  const parallel = await run('parallel')
  log(`parallel: ${JSON.stringify(parallel)} ${JSON.stringify((globalThis as any).__prof)}`)
  const serial = await run('serial')
  log(`serial:   ${JSON.stringify(serial)}`)
  log('')
  log(`machine: ${os.cpus().length} × ${os.cpus()[0]?.model}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, node ${process.version}`)
  log(`                       parallel      serial`)
  log(`placements/s       ${String(parallel.placementsPerSec).padStart(11)} ${String(serial.placementsPerSec).padStart(11)}`)
  log(`small tenant p50   ${String(parallel.smallTenantP50Ms).padStart(9)}ms ${String(serial.smallTenantP50Ms).padStart(9)}ms`)
  log(`small tenant p99   ${String(parallel.smallTenantP99Ms).padStart(9)}ms ${String(serial.smallTenantP99Ms).padStart(9)}ms`)
  log(`over-commits       ${String(parallel.overcommits).padStart(11)} ${String(serial.overcommits).padStart(11)}`)
  console.log(
    JSON.stringify({
      nodes: opts.nodes,
      tenants: opts.tenants,
      instances: total,
      placementsPerSec: parallel.placementsPerSec,
      serialPlacementsPerSec: serial.placementsPerSec,
      overcommits: parallel.overcommits + serial.overcommits,
      smallTenantP50Ms: parallel.smallTenantP50Ms,
      smallTenantP99Ms: parallel.smallTenantP99Ms,
      serialSmallTenantP50Ms: serial.smallTenantP50Ms,
      serialSmallTenantP99Ms: serial.smallTenantP99Ms,
      conflicts: parallel.conflicts,
    }),
  )
  if (parallel.overcommits + serial.overcommits > 0) process.exitCode = 1
} finally {
  await database.close()
  await fresh.drop()
}
