/**
 * npm run bench:scheduler -- [--nodes 5000] [--tenants 100] [--instances 50000] [--batch 256] [--workers 4]
 *                            [--small-every-ms 20] [--no-partitions] [--no-fast-lane]
 *
 * Simulated nodes and tenants, in-process, over the real scheduler code and a real
 * PostgreSQL (the local server, or an embedded one). Measures placements/s end to end
 * including persistence, time-to-placement of a small tenant while a large one floods,
 * over-commits (must be 0), the CPU each placement costs in this process and in
 * PostgreSQL (stable on a busy machine, unlike rates), the balance of the result and the
 * process's peak RSS, for the parallel per-tenant scheduler and, in the same run, the
 * serial single-queue mode. Ends with one line of JSON.
 */
import { readFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { applyMigrations, HOT_SCHEMA, openDatabase, systemClock } from '@alveary/core'
import { z } from 'zod'
import { freshDatabase } from '../apps/bff/src/fresh-database'
import { applyPlan } from '../packages/core/src/scheduler/apply'
import { loadNodes, loadRequests } from '../packages/core/src/scheduler/load'
import { createScheduler } from '../packages/core/src/scheduler/scheduler'
import type { PlacementRequest } from '../packages/core/src/scheduler/types'
import { cleanupOnInterrupt } from './interrupt'

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '5000' },
    tenants: { type: 'string', default: '100' },
    instances: { type: 'string', default: '50000' },
    batch: { type: 'string', default: '256' },
    workers: { type: 'string', default: '4' },
    'small-every-ms': { type: 'string', default: '20' },
    'no-partitions': { type: 'boolean', default: false },
    'no-fast-lane': { type: 'boolean', default: false },
  },
})
const opts = z
  .object({
    nodes: z.coerce.number().int().min(1).max(100_000),
    tenants: z.coerce.number().int().min(3).max(10_000),
    instances: z.coerce.number().int().min(10).max(1_000_000),
    batch: z.coerce.number().int().min(1).max(5000),
    workers: z.coerce.number().int().min(1).max(64),
    'small-every-ms': z.coerce.number().int().min(1),
    'no-partitions': z.boolean(),
    'no-fast-lane': z.boolean(),
  })
  .parse(values)

const root = path.resolve(import.meta.dirname, '..')
const log = (s: string) => process.stderr.write(`${s}\n`)
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! : 0
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** CPU ticks used so far by each PostgreSQL backend serving this database (local server only, else null). */
async function pgCpuTicks(pool: import('pg').Pool): Promise<Map<number, number> | null> {
  const { rows } = await pool.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = current_database()')
  const out = new Map<number, number>()
  try {
    for (const { pid } of rows) {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
      out.set(pid, Number(fields[11]) + Number(fields[12]))
    }
  } catch {
    return null
  }
  return out
}
/** CPU milliseconds between two snapshots (backends that exited in between are not counted). */
const pgCpuMs = (a: Map<number, number> | null, b: Map<number, number> | null) => (a && b ? [...b].reduce((s, [pid, t]) => s + t - (a.get(pid) ?? 0), 0) * 10 : null)

const fresh = await freshDatabase()
const database = openDatabase(fresh.url, { max: 16 })
const cleanup = cleanupOnInterrupt(async () => {
  await database.close()
  await fresh.drop()
})
try {
  await applyMigrations(database.pool, path.join(root, 'prisma/migrations'))
  await applyMigrations(database.hotPool, path.join(root, 'prisma/hot/migrations'), { schema: HOT_SCHEMA })
  const pool = database.pool
  log(`seeding ${opts.nodes} nodes, ${opts.tenants} tenants, ${opts.instances} instances…`)

  // Nodes: 16 cores, 64 GiB each; all ready.
  const nodeIds = (
    await pool.query<{ id: string }>(
      `INSERT INTO "Node" (id, name, address, "cpuMillis", "memoryMb", drivers, "agentVersion", "credentialHash")
       SELECT gen_random_uuid(), 'node-' || lpad(g::text, 6, '0'), '10.0.0.1', 16000, 65536, '{process}', 'bench', md5(g::text) FROM generate_series(1, $1) g RETURNING id`,
      [opts.nodes],
    )
  ).rows.map((r) => r.id)
  await database.hotPool.query(`INSERT INTO hot."NodeStatus" ("nodeId", state, connected, "lastHeartbeatAt") SELECT unnest($1::uuid[]), 'ready', true, now()`, [nodeIds])

  // Tenant 0 is the large one (40% of instances), tenant 1 the small one measured, the rest share the remainder.
  const tenants = (
    await pool.query<{ id: string }>(`INSERT INTO "Tenant" (id, slug, name, "runAsUid") SELECT gen_random_uuid(), 't' || g, 'Tenant ' || g, 200000 + g FROM generate_series(0, $1 - 1) g RETURNING id`, [opts.tenants])
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
  const source = { pool, hotPool: database.hotPool }
  const total = (await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM "Instance"`)).rows[0]!.n
  log(`seeded; ${total} instances to place`)

  async function run(mode: 'parallel' | 'serial', limit = Infinity) {
    await pool.query(`UPDATE "Instance" SET "nodeId" = NULL, "hostPorts" = '{}', "pendingReason" = NULL WHERE "nodeId" IS NOT NULL`)
    await pool.query(`DELETE FROM "Instance" WHERE "appId" = $1`, [small])
    // Each mode starts from the same clean tables; production tables are analysed and vacuumed by autovacuum.
    await pool.query('VACUUM ANALYZE')
    await database.hotPool.query('VACUUM ANALYZE hot."NodeStatus"')
    const requests = (await loadRequests(pool)).slice(0, limit)
    const flood = requests.length
    const enqueuedAt = new Map<string, number>()
    const smallTtp: number[] = []
    let placed = 0
    const s = createScheduler({
      apply: (plan, range) => applyPlan(source, plan, range),
      clock: systemClock,
      config: {
        mode,
        workers: opts.workers,
        batchSize: opts.batch,
        ports: { min: 20000, max: 29999 },
        backoff: { baseMs: 50, maxMs: 1000 },
        partitions: !opts['no-partitions'],
        fastLane: !opts['no-fast-lane'],
      },
      loadNodes: (ids) => loadNodes(source, ids),
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
    // Warm the pool so every backend exists (and is counted) from the start.
    await Promise.all(Array.from({ length: 8 }, () => pool.query('SELECT 1')))
    const pg0 = await pgCpuTicks(pool)
    const cpu0 = process.cpuUsage()
    const t0 = performance.now()
    s.enqueue(requests)
    // The small tenant deploys one instance at a time while the flood is being placed.
    let ordinal = 0
    let flooding = true
    const smallLoop = (async () => {
      while (flooding) {
        const { rows } = await pool.query<{ id: string }>(
          `INSERT INTO "Instance" (id, "tenantId", "appId", ordinal, generation, "cpuMillis", "memoryMb", priority) VALUES (gen_random_uuid(), $1, $2, $3, 1, 100, 128, 100) RETURNING id`,
          [tenants[1], small, ordinal++],
        )
        const req: PlacementRequest = { instanceId: rows[0]!.id, tenantId: tenants[1]!, appId: small, driver: 'process', cpuMillis: 100, memoryMb: 128, portCount: 1, nodeSelector: {}, spread: 'soft', strategy: 'spread', priority: 100 }
        enqueuedAt.set(req.instanceId, performance.now())
        s.enqueue([req])
        await sleep(opts['small-every-ms'])
      }
    })()
    while (placed - smallTtp.length < flood) await sleep(5)
    const elapsed = (performance.now() - t0) / 1000
    const cpu = process.cpuUsage(cpu0)
    const pg1 = await pgCpuTicks(pool)
    flooding = false
    await smallLoop
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
    const spread = (
      await pool.query<{ persisted: number; max: number; min: number }>(
        `SELECT coalesce(sum(c), 0)::int AS persisted, coalesce(max(c), 0)::int AS max, coalesce(min(c), 0)::int AS min
         FROM (SELECT n.id, count(i.id) AS c FROM "Node" n LEFT JOIN "Instance" i ON i."nodeId" = n.id AND i."appId" <> $1 GROUP BY n.id) x`,
        [small],
      )
    ).rows[0]!
    return {
      placementsPerSec: Math.round(flood / elapsed),
      seconds: Number(elapsed.toFixed(2)),
      persisted: spread.persisted,
      overcommits: over.rows[0]!.n,
      conflicts: s.stats().conflicts,
      smallTenantSamples: smallTtp.length,
      smallTenantP50Ms: Math.round(pct(smallTtp, 50)),
      smallTenantP99Ms: Math.round(pct(smallTtp, 99)),
      /** CPU per 1,000 placements, in ms: this process (planning, protocol) and PostgreSQL (commits). */
      nodeCpuMsPer1k: Math.round(((cpu.user + cpu.system) / 1000 / flood) * 1000),
      pgCpuMsPer1k: pgCpuMs(pg0, pg1) === null ? null : Math.round((pgCpuMs(pg0, pg1)! * 1000) / flood),
      /** Instances per node: fewest and most (the fleet's even share is instances / nodes). */
      perNodeMin: spread.min,
      perNodeMax: spread.max,
    }
  }

  // Warm-up (JIT, caches, connections), so neither measured run pays for being first.
  await run('parallel', Math.min(5000, Math.floor(total / 10)))
  const parallel = await run('parallel')
  log(`parallel: ${JSON.stringify(parallel)}`)
  const serial = await run('serial')
  log(`serial:   ${JSON.stringify(serial)}`)
  const peakRssMb = Math.round(process.resourceUsage().maxRSS / 1024)
  const load = os.loadavg().map((x) => x.toFixed(1)).join(' ')
  const row = (label: string, f: (r: typeof parallel) => string | number | null) => log(`${label.padEnd(28)}${String(f(parallel)).padStart(10)}${String(f(serial)).padStart(12)}`)
  log('')
  log(`machine: ${os.cpus().length} × ${os.cpus()[0]?.model}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, node ${process.version}, load average ${load}`)
  log(`${''.padEnd(28)}${'parallel'.padStart(10)}${'serial'.padStart(12)}`)
  row('placements/s', (r) => r.placementsPerSec)
  row('small tenant p50 (ms)', (r) => r.smallTenantP50Ms)
  row('small tenant p99 (ms)', (r) => r.smallTenantP99Ms)
  row('over-commits', (r) => r.overcommits)
  row('conflicts', (r) => r.conflicts)
  row('CPU ms / 1k: this process', (r) => r.nodeCpuMsPer1k)
  row('CPU ms / 1k: PostgreSQL', (r) => r.pgCpuMsPer1k)
  row('instances per node min-max', (r) => `${r.perNodeMin}-${r.perNodeMax}`)
  log(`peak RSS of this process: ${peakRssMb} MiB`)
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
      nodeCpuMsPer1k: parallel.nodeCpuMsPer1k,
      pgCpuMsPer1k: parallel.pgCpuMsPer1k,
      perNodeMax: parallel.perNodeMax,
      peakRssMb,
      loadAverage: Number(os.loadavg()[0]!.toFixed(1)),
    }),
  )
  if (parallel.overcommits + serial.overcommits > 0) process.exitCode = 1
} finally {
  await cleanup()
}
