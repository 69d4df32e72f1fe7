import type pg from 'pg'
import { PRIORITY_OF_CLASS, type PlacementRequest, type SchedNode, type SpreadMode, type Strategy } from './types'

/** Where node state comes from: the desired store (spec, allocations) and the hot store (readiness). */
export interface NodeSource {
  pool: pg.Pool
  hotPool: pg.Pool
}

/** A node as the plan applier sees it: the scheduler's view plus the host ports in use. */
export interface FreshNode extends SchedNode {
  usedPorts: Set<number>
}

export interface NodeRow {
  id: string
  name: string
  cpu: number
  mem: number
  schedulable: boolean
  dedicated: string | null
  drivers: string[]
  labels: Record<string, string>
  pmin: number | null
  pmax: number | null
  network: 'host' | 'overlay'
  unsandboxed: boolean
  volumes: string[] | null
}
export interface AllocRow {
  nodeId: string
  cpu: number
  mem: number
  ports: number
  /** appId -> replicas on the node. */
  apps: Record<string, number>
  list?: string | null
}

/** What holds capacity on a node: placed instances not yet released, and reservations (a move's target, or its source until it ends). */
export const CAPACITY_HOLDERS = `(SELECT "nodeId", "appId", "cpuMillis", "memoryMb", "hostPorts" FROM "Instance" WHERE "nodeId" IS NOT NULL AND "releasedAt" IS NULL
  UNION ALL SELECT "nodeId", "appId", "cpuMillis", "memoryMb", "hostPorts" FROM "Reservation")`

/**
 * The two reads behind every SchedNode: node rows, and one row per node of what holds
 * capacity on it (apps as a JSON object: parsing rows is most of the client's cost).
 * `ids` is SQL for a uuid[] (a parameter, or a literal from `uuidArray`).
 */
export function nodeReads(ids: string | null, withPorts: boolean): { spec: string; alloc: string } {
  return {
    spec: `SELECT id, name, "cpuMillis" AS cpu, "memoryMb" AS mem, schedulable AND NOT draining AS schedulable, "dedicatedTenantId" AS dedicated,
                  drivers::text[] AS drivers, labels, "portMin" AS pmin, "portMax" AS pmax, "networkMode"::text AS network,
                  coalesce(capabilities->'sandbox'->>'mode' = 'unsandboxed', false) AS unsandboxed,
                  ARRAY(SELECT jsonb_array_elements_text(capabilities->'volume'->'drivers')) AS volumes
           FROM "Node" WHERE ${ids ? `id = ANY(${ids})` : 'true'}`,
    alloc: `SELECT "nodeId", sum(cpu)::int AS cpu, sum(mem)::int AS mem, sum(ports)::int AS ports, json_object_agg("appId", n) AS apps
                   ${withPorts ? `, string_agg(list, ',') AS list` : ''}
            FROM (SELECT "nodeId", "appId", count(*) AS n, sum("cpuMillis") AS cpu, sum("memoryMb") AS mem, sum(cardinality("hostPorts")) AS ports
                         ${withPorts ? `, string_agg(array_to_string("hostPorts", ','), ',') AS list` : ''}
                  FROM ${CAPACITY_HOLDERS} AS h WHERE ${ids ? `"nodeId" = ANY(${ids})` : 'true'} GROUP BY 1, 2) AS per_app
            GROUP BY 1`,
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
/** A uuid[] literal, for statements sent several at a time (the simple protocol takes no parameters). */
export function uuidArray(ids: readonly string[]): string {
  for (const id of ids) if (!UUID.test(id)) throw new Error(`not a uuid: ${JSON.stringify(id).slice(0, 60)}`)
  return `'{${ids.join(',')}}'::uuid[]`
}

/** Which of the nodes (all, or the ids given) hold a ready lease in the hot store. */
export async function readyNodes(hotPool: pg.Pool, ids?: readonly string[]): Promise<Set<string>> {
  const { rows } = await hotPool.query<{ nodeId: string }>(`SELECT "nodeId" FROM hot."NodeStatus" WHERE state = 'ready' AND ${ids ? '"nodeId" = ANY($1::uuid[])' : 'true'}`, ids ? [ids] : [])
  return new Set(rows.map((r) => r.nodeId))
}

/**
 * SchedNodes from the rows of `nodeReads` and the ready set. Everything a filter reads
 * comes from here, for the planner's cache and for the applier's re-check alike: a new
 * filter's fields are added here (and to `nodeReads`) once.
 */
export function buildNodes(spec: readonly NodeRow[], allocs: readonly AllocRow[], ready: ReadonlySet<string>): Map<string, FreshNode> {
  const out = new Map<string, FreshNode>()
  for (const n of spec)
    out.set(n.id, {
      id: n.id,
      name: n.name,
      ready: ready.has(n.id),
      schedulable: n.schedulable,
      dedicatedTenantId: n.dedicated,
      drivers: new Set(n.drivers),
      labels: n.labels,
      cpuCapacity: n.cpu,
      memoryCapacity: n.mem,
      cpuAllocated: 0,
      memoryAllocated: 0,
      portsUsed: 0,
      portRange: n.pmin !== null && n.pmax !== null ? { min: n.pmin, max: n.pmax } : null,
      appCounts: new Map(),
      usedPorts: new Set(),
      networkMode: n.network,
      processUnsandboxed: n.unsandboxed,
      volumeDrivers: new Set(n.volumes ?? []),
    })
  for (const a of allocs) {
    const n = out.get(a.nodeId)
    if (!n) continue
    n.cpuAllocated = a.cpu
    n.memoryAllocated = a.mem
    n.portsUsed = a.ports
    n.appCounts = new Map(Object.entries(a.apps))
    if (a.list) for (const p of a.list.split(',')) if (p) n.usedPorts.add(Number(p))
  }
  return out
}

/** Nodes for the scheduler's cache (all, or the ids given). */
export async function loadNodes({ pool, hotPool }: NodeSource, ids?: string[]): Promise<SchedNode[]> {
  const sql = nodeReads(ids ? '$1::uuid[]' : null, false)
  const params = ids ? [ids] : []
  const [spec, allocs, ready] = await Promise.all([pool.query<NodeRow>(sql.spec, params), pool.query<AllocRow>(sql.alloc, params), readyNodes(hotPool, ids)])
  return [...buildNodes(spec.rows, allocs.rows, ready).values()].map(({ usedPorts: _, ...n }) => n)
}

/** Nodes as the applier sees them (host ports in use included), read through `q`: a transaction that locked them. */
export async function loadFreshNodes(q: pg.PoolClient, hotPool: pg.Pool, ids: string[]): Promise<Map<string, FreshNode>> {
  const sql = nodeReads('$1::uuid[]', true)
  const [spec, allocs, ready] = await Promise.all([q.query<NodeRow>(sql.spec, [ids]), q.query<AllocRow>(sql.alloc, [ids]), readyNodes(hotPool, ids)])
  return buildNodes(spec.rows, allocs.rows, ready)
}

interface RequestRow {
  id: string
  tenantId: string
  appId: string
  cpuMillis: number
  memoryMb: number
  driver: string
  portCount: number
  nodeSelector: Record<string, string>
  spread: SpreadMode
  strategy: Strategy
  priorityClass: keyof typeof PRIORITY_OF_CLASS
  network: boolean
  trusted: boolean
  /** Volume drivers the app mounts (empty: none), and where its local volumes' data is. */
  volumeDrivers: string[]
  pinned: string | null
}
const REQUESTS = (byId: boolean, placed = false) => `
  SELECT i.id, i."tenantId", i."appId", i."cpuMillis", i."memoryMb", a.driver::text AS driver, jsonb_array_length(a.ports)::int AS "portCount",
         a."nodeSelector", a.spread::text AS spread, coalesce(a."placementStrategy", t."placementStrategy")::text AS strategy, a."priorityClass"::text AS "priorityClass",
         a."networkId" IS NOT NULL AS network, t.trusted,
         ARRAY(SELECT DISTINCT v->>'driver' FROM jsonb_array_elements(a.volumes) AS v) AS "volumeDrivers",
         (SELECT vol."nodeId" FROM "Volume" vol WHERE vol."appId" = i."appId" AND vol.ordinal = i.ordinal AND vol.driver = 'local' AND vol."nodeId" IS NOT NULL LIMIT 1) AS pinned
  FROM "Instance" i JOIN "App" a ON a.id = i."appId" JOIN "Tenant" t ON t.id = i."tenantId"
  WHERE ${placed ? 'true' : 'i."nodeId" IS NULL'} AND i."desiredState" = 'running' AND a."deletedAt" IS NULL ${byId ? 'AND i.id = ANY($1::uuid[])' : ''}
  ORDER BY i."createdAt", i.ordinal`
const PAGE = 10_000

/**
 * Placement requests for unplaced instances that should run (all, or the ids given), oldest
 * first. All of them are read through a cursor, page by page, and the per-app part of a
 * request is shared by all its instances, so 200,000 pending instances cost tens of MB.
 */
export async function loadRequests(pool: pg.Pool, instanceIds?: string[]): Promise<PlacementRequest[]> {
  const apps = new Map<string, Omit<PlacementRequest, 'instanceId' | 'cpuMillis' | 'memoryMb'>>()
  const out: PlacementRequest[] = []
  const add = (rows: RequestRow[]) => {
    for (const r of rows) {
      let app = apps.get(r.appId)
      if (!app) {
        app = { tenantId: r.tenantId, appId: r.appId, driver: r.driver, portCount: r.portCount, nodeSelector: r.nodeSelector, spread: r.spread, strategy: r.strategy, priority: PRIORITY_OF_CLASS[r.priorityClass], network: r.network, trusted: r.trusted }
        apps.set(r.appId, app)
      }
      // Local volumes that hold data pin their instance to that node: a move is what takes them elsewhere.
      const volumes = r.volumeDrivers.length ? { volumes: { drivers: r.volumeDrivers, pinnedNodeId: r.pinned } } : {}
      out.push({ instanceId: r.id, ...app, cpuMillis: r.cpuMillis, memoryMb: r.memoryMb, ...volumes })
    }
  }
  if (instanceIds) {
    if (instanceIds.length) add((await pool.query<RequestRow>(REQUESTS(true), [instanceIds])).rows)
    return out
  }
  const client = await pool.connect()
  try {
    await client.query('BEGIN READ ONLY')
    await client.query(`DECLARE pending NO SCROLL CURSOR FOR ${REQUESTS(false)}`)
    for (;;) {
      const { rows } = await client.query<RequestRow>(`FETCH ${PAGE} FROM pending`)
      add(rows)
      if (rows.length < PAGE) break
    }
    await client.query('COMMIT')
    return out
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {})
    throw err
  } finally {
    client.release()
  }
}

/** What placing this instance needs, wherever it runs now (a move plans its target with it). */
export async function loadRequestFor(pool: pg.Pool, instanceId: string): Promise<PlacementRequest | null> {
  const { rows } = await pool.query<RequestRow>(REQUESTS(true, true), [[instanceId]])
  const r = rows[0]
  if (!r) return null
  return {
    instanceId: r.id,
    tenantId: r.tenantId,
    appId: r.appId,
    driver: r.driver,
    portCount: r.portCount,
    nodeSelector: r.nodeSelector,
    spread: r.spread,
    strategy: r.strategy,
    priority: PRIORITY_OF_CLASS[r.priorityClass],
    network: r.network,
    trusted: r.trusted,
    cpuMillis: r.cpuMillis,
    memoryMb: r.memoryMb,
    ...(r.volumeDrivers.length && { volumes: { drivers: r.volumeDrivers, pinnedNodeId: r.pinned } }),
  }
}
