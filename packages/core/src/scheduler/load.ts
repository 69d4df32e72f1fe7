import type pg from 'pg'
import type { Db } from '../store/db'
import type { HotStore } from '../store/hot-store'
import type { TVolumeCapability } from '../protocol'
import type { Prisma } from '../generated/prisma/client'
import { PRIORITY_OF_CLASS, type PlacementRequest, type SchedNode } from './types'

/** What holds capacity on a node: placed instances not yet released, and reservations (moves). */
export const CAPACITY_HOLDERS = `(SELECT "nodeId", "appId", "cpuMillis", "memoryMb", "hostPorts" FROM "Instance" WHERE "nodeId" IS NOT NULL AND "releasedAt" IS NULL
  UNION ALL SELECT "nodeId", "appId", "cpuMillis", "memoryMb", "hostPorts" FROM "Reservation")`

/** Reads nodes (spec from the desired store, readiness from the hot store) and their allocations. */
export async function loadNodes(db: Db, hot: HotStore, pool: pg.Pool, ids?: string[]): Promise<SchedNode[]> {
  const [nodes, statuses, allocs, ports] = await Promise.all([
    db.node.findMany({
      where: ids ? { id: { in: ids } } : {},
      select: { id: true, name: true, cpuMillis: true, memoryMb: true, schedulable: true, draining: true, dedicatedTenantId: true, drivers: true, labels: true, portMin: true, portMax: true, capabilities: true },
    }),
    hot.nodeStatuses(ids),
    pool.query<{ nodeId: string; appId: string; n: number; cpu: number; mem: number }>(
      `SELECT "nodeId", "appId", count(*)::int AS n, sum("cpuMillis")::int AS cpu, sum("memoryMb")::int AS mem
       FROM ${CAPACITY_HOLDERS} AS h ${ids ? 'WHERE "nodeId" = ANY($1::uuid[])' : ''} GROUP BY 1, 2`,
      ids ? [ids] : [],
    ),
    pool.query<{ nodeId: string; n: number }>(
      `SELECT "nodeId", sum(cardinality("hostPorts"))::int AS n FROM ${CAPACITY_HOLDERS} AS h
       ${ids ? 'WHERE "nodeId" = ANY($1::uuid[])' : ''} GROUP BY 1`,
      ids ? [ids] : [],
    ),
  ])
  const ready = new Map(statuses.map((s) => [s.nodeId, s.state === 'ready']))
  const byNode = new Map<string, { cpu: number; mem: number; apps: Map<string, number> }>()
  for (const r of allocs.rows) {
    const a = byNode.get(r.nodeId) ?? { cpu: 0, mem: 0, apps: new Map() }
    a.cpu += r.cpu
    a.mem += r.mem
    a.apps.set(r.appId, r.n)
    byNode.set(r.nodeId, a)
  }
  const portsUsed = new Map(ports.rows.map((r) => [r.nodeId, r.n]))
  return nodes.map((n) => ({
    id: n.id,
    name: n.name,
    ready: ready.get(n.id) ?? false,
    schedulable: n.schedulable && !n.draining,
    dedicatedTenantId: n.dedicatedTenantId,
    drivers: new Set(n.drivers),
    volumeDrivers: new Set((n.capabilities as { volume?: TVolumeCapability }).volume?.drivers ?? []),
    labels: n.labels as Record<string, string>,
    cpuCapacity: n.cpuMillis,
    memoryCapacity: n.memoryMb,
    cpuAllocated: byNode.get(n.id)?.cpu ?? 0,
    memoryAllocated: byNode.get(n.id)?.mem ?? 0,
    portsUsed: portsUsed.get(n.id) ?? 0,
    portRange: n.portMin !== null && n.portMax !== null ? { min: n.portMin, max: n.portMax } : null,
    appCounts: byNode.get(n.id)?.apps ?? new Map(),
  }))
}

const requestSelect = {
  id: true,
  tenantId: true,
  appId: true,
  ordinal: true,
  cpuMillis: true,
  memoryMb: true,
  app: { select: { driver: true, ports: true, nodeSelector: true, spread: true, placementStrategy: true, priorityClass: true, volumes: true, tenant: { select: { placementStrategy: true } } } },
} satisfies Prisma.InstanceSelect

async function toRequests(db: Db, rows: Prisma.InstanceGetPayload<{ select: typeof requestSelect }>[]): Promise<PlacementRequest[]> {
  // Local volumes that already hold data pin their instance to that node (moves copy them elsewhere).
  const stateful = rows.filter((r) => (r.app.volumes as unknown[]).length > 0)
  const pinned = stateful.length
    ? await db.volume.findMany({
        where: { driver: 'local', nodeId: { not: null }, OR: stateful.map((r) => ({ appId: r.appId, ordinal: r.ordinal })) },
        select: { appId: true, ordinal: true, nodeId: true },
      })
    : []
  const pinOf = new Map(pinned.map((v) => [`${v.appId}/${v.ordinal}`, v.nodeId]))
  return rows.map((r) => {
    const volumes = r.app.volumes as { driver: string }[]
    return {
      instanceId: r.id,
      tenantId: r.tenantId,
      appId: r.appId,
      driver: r.app.driver,
      cpuMillis: r.cpuMillis,
      memoryMb: r.memoryMb,
      portCount: (r.app.ports as unknown[]).length,
      nodeSelector: r.app.nodeSelector as Record<string, string>,
      spread: r.app.spread,
      strategy: r.app.placementStrategy ?? r.app.tenant.placementStrategy,
      priority: PRIORITY_OF_CLASS[r.app.priorityClass],
      ...(volumes.length && { volumes: { drivers: [...new Set(volumes.map((v) => v.driver))], pinnedNodeId: pinOf.get(`${r.appId}/${r.ordinal}`) ?? null } }),
    }
  })
}

/** Placement requests for unplaced instances that should run (all, or the ids given). */
export async function loadRequests(db: Db, instanceIds?: string[]): Promise<PlacementRequest[]> {
  const rows = await db.instance.findMany({
    where: { nodeId: null, desiredState: 'running', app: { deletedAt: null }, ...(instanceIds ? { id: { in: instanceIds } } : {}) },
    orderBy: [{ createdAt: 'asc' }, { ordinal: 'asc' }],
    select: requestSelect,
  })
  return toRequests(db, rows)
}

/** What placing this instance needs, wherever it is now (a move plans its target with it). */
export async function loadRequestFor(db: Db, instanceId: string): Promise<PlacementRequest | null> {
  const row = await db.instance.findUnique({ where: { id: instanceId }, select: requestSelect })
  return row ? ((await toRequests(db, [row]))[0] ?? null) : null
}
