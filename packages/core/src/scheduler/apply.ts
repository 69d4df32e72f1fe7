import type pg from 'pg'
import { attachVolumes } from '../volumes/attach'
import { CAPACITY_HOLDERS } from './load'
import type { PlacementRequest, PortRange } from './types'

export interface Planned {
  req: PlacementRequest
  nodeId: string
}

export interface Allocation {
  cpu: number
  memory: number
  ports: number
  apps: Map<string, number>
}

export interface ApplyResult {
  placed: { instanceId: string; nodeId: string; hostPorts: number[] }[]
  /** Did not fit once re-checked against fresh state: re-plan these. */
  conflicts: Planned[]
  /** Deleted, stopped or placed elsewhere meanwhile: drop these. */
  gone: string[]
  /** Fresh allocation of every node in the plan, including what this plan placed. */
  allocations: Map<string, Allocation>
}

export function freePorts(used: Set<number>, count: number, range: PortRange): number[] | null {
  const out: number[] = []
  for (let p = range.min; p <= range.max && out.length < count; p++) if (!used.has(p)) out.push(p)
  return out.length === count ? out : null
}

/**
 * The plan applier: re-checks a batch of planned placements against the database and
 * commits the ones that still fit, in one transaction. Nodes in the plan are locked
 * (transaction-scoped advisory locks, in a fixed order) only for the length of this
 * check, never while planning: optimistic concurrency, so a node is never over-committed
 * however many schedulers (tenant workers, BFF processes) plan at once.
 */
export async function applyPlan(pool: pg.Pool, plan: readonly Planned[], range: PortRange): Promise<ApplyResult> {
  const result: ApplyResult = { placed: [], conflicts: [], gone: [], allocations: new Map() }
  if (!plan.length) return result
  const nodeIds = [...new Set(plan.map((p) => p.nodeId))].sort()
  const client = await pool.connect()
  try {
    await client.query('BEGIN')
    await client.query('SELECT pg_advisory_xact_lock(h) FROM (SELECT hashtextextended(x, 7) AS h FROM unnest($1::text[]) AS x ORDER BY 1) AS s', [nodeIds])
    const caps = await client.query<{ id: string; cpu: number; mem: number; pmin: number | null; pmax: number | null }>(
      'SELECT id, "cpuMillis" AS cpu, "memoryMb" AS mem, "portMin" AS pmin, "portMax" AS pmax FROM "Node" WHERE id = ANY($1::uuid[])',
      [nodeIds],
    )
    const allocs = await client.query<{ nodeId: string; appId: string; n: number; cpu: number; mem: number }>(
        `SELECT "nodeId", "appId", count(*)::int AS n, sum("cpuMillis")::int AS cpu, sum("memoryMb")::int AS mem
         FROM ${CAPACITY_HOLDERS} AS h WHERE "nodeId" = ANY($1::uuid[]) GROUP BY 1, 2`,
      [nodeIds],
    )
    const ports = await client.query<{ nodeId: string; ports: number[] }>(
        `SELECT "nodeId", array_agg(p) AS ports FROM ${CAPACITY_HOLDERS} AS h, unnest("hostPorts") AS p
         WHERE "nodeId" = ANY($1::uuid[]) GROUP BY 1`,
      [nodeIds],
    )
    const capacity = new Map(caps.rows.map((r) => [r.id, r]))
    const used = new Map<string, Allocation & { portSet: Set<number> }>()
    for (const id of nodeIds) used.set(id, { cpu: 0, memory: 0, ports: 0, apps: new Map(), portSet: new Set() })
    for (const r of allocs.rows) {
      const u = used.get(r.nodeId)!
      u.cpu += r.cpu
      u.memory += r.mem
      u.apps.set(r.appId, r.n)
    }
    for (const r of ports.rows) {
      const u = used.get(r.nodeId)!
      u.portSet = new Set(r.ports)
      u.ports = r.ports.length
    }

    const accepted: { p: Planned; hostPorts: number[] }[] = []
    for (const p of plan) {
      const cap = capacity.get(p.nodeId)
      const u = used.get(p.nodeId)!
      const hostPorts = cap && u.cpu + p.req.cpuMillis <= cap.cpu && u.memory + p.req.memoryMb <= cap.mem ? freePorts(u.portSet, p.req.portCount, cap.pmin !== null && cap.pmax !== null ? { min: cap.pmin, max: cap.pmax } : range) : null
      if (!hostPorts || (p.req.spread === 'hard' && (u.apps.get(p.req.appId) ?? 0) > 0)) {
        result.conflicts.push(p)
        continue
      }
      u.cpu += p.req.cpuMillis
      u.memory += p.req.memoryMb
      u.ports += hostPorts.length
      hostPorts.forEach((x) => u.portSet.add(x))
      u.apps.set(p.req.appId, (u.apps.get(p.req.appId) ?? 0) + 1)
      accepted.push({ p, hostPorts })
    }

    if (accepted.length) {
      const { rows } = await client.query<{ id: string }>(
        `UPDATE "Instance" AS i SET "nodeId" = v.node, "hostPorts" = string_to_array(v.ports, ',')::int[], "pendingReason" = NULL
         FROM unnest($1::uuid[], $2::uuid[], $3::text[]) AS v(id, node, ports)
         WHERE i.id = v.id AND i."nodeId" IS NULL AND i."desiredState" = 'running'
         RETURNING i.id`,
        [accepted.map((a) => a.p.req.instanceId), accepted.map((a) => a.p.nodeId), accepted.map((a) => a.hostPorts.join(','))],
      )
      const ok = new Set(rows.map((r) => r.id))
      for (const a of accepted) {
        if (ok.has(a.p.req.instanceId)) result.placed.push({ instanceId: a.p.req.instanceId, nodeId: a.p.nodeId, hostPorts: a.hostPorts })
        else {
          // Not placed after all: give back what the check above counted for it.
          const u = used.get(a.p.nodeId)!
          u.cpu -= a.p.req.cpuMillis
          u.memory -= a.p.req.memoryMb
          u.ports -= a.hostPorts.length
          u.apps.set(a.p.req.appId, (u.apps.get(a.p.req.appId) ?? 1) - 1)
          result.gone.push(a.p.req.instanceId)
        }
      }
      await attachVolumes(client, result.placed.map((p) => p.instanceId))
      const touched = [...new Set(result.placed.map((p) => p.nodeId))]
      if (touched.length) await client.query('UPDATE "Node" SET "desiredGeneration" = "desiredGeneration" + 1 WHERE id = ANY($1::uuid[])', [touched])
    }
    await client.query('COMMIT')
    for (const [id, u] of used) result.allocations.set(id, { cpu: u.cpu, memory: u.memory, ports: u.ports, apps: u.apps })
    return result
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {})
    throw err
  } finally {
    client.release()
  }
}
