import type pg from 'pg'
import type { Db } from '../store/db'
import type { HotStore } from '../store/hot-store'
import { freePorts } from './apply'
import { CAPACITY_HOLDERS, loadNodes } from './load'
import { planOne } from './plan'
import type { PlacementRequest, PortRange } from './types'

/**
 * Holds capacity on a node for an instance that keeps running where it is for now (the
 * target of a move): a move is two placements for a while. The node is chosen by the same
 * filters and scorers as any placement, among `candidates`; the choice is re-checked and
 * committed under the plan applier's node lock, as a Reservation the scheduler counts
 * like an instance (host ports included).
 */
export async function reserveCapacity(
  deps: { db: Db; hot: HotStore; pool: pg.Pool },
  req: PlacementRequest,
  opts: { moveId: string; candidates: readonly string[]; ports: PortRange },
): Promise<{ nodeId: string; hostPorts: number[] } | { reason: string }> {
  const nodes = await loadNodes(deps.db, deps.hot, deps.pool, [...opts.candidates])
  const plan = planOne(nodes, req, { ports: opts.ports })
  if ('reason' in plan) return plan
  const client = await deps.pool.connect()
  try {
    await client.query('BEGIN')
    await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 7))', [plan.nodeId])
    // Other placements on this node wait for the lock: what is committed now is what counts.
    const [fresh] = await loadNodes(deps.db, deps.hot, deps.pool, [plan.nodeId])
    const check = fresh ? planOne([fresh], req, { ports: opts.ports }) : { reason: 'the node left' }
    if ('reason' in check) {
      await client.query('ROLLBACK')
      return check
    }
    const used = await client.query<{ ports: number[] | null }>(`SELECT array_agg(p) AS ports FROM ${CAPACITY_HOLDERS} AS h, unnest("hostPorts") AS p WHERE "nodeId" = $1::uuid`, [plan.nodeId])
    const hostPorts = freePorts(new Set(used.rows[0]?.ports ?? []), req.portCount, fresh!.portRange ?? opts.ports)
    if (!hostPorts) {
      await client.query('ROLLBACK')
      return { reason: 'no free host ports' }
    }
    await client.query(
      `INSERT INTO "Reservation" (id, "instanceId", "moveId", "nodeId", "appId", "cpuMillis", "memoryMb", "hostPorts")
       VALUES (gen_random_uuid(), $1, $2, $3, $4, $5, $6, $7) ON CONFLICT ("moveId", "nodeId") DO NOTHING`,
      [req.instanceId, opts.moveId, plan.nodeId, req.appId, req.cpuMillis, req.memoryMb, hostPorts],
    )
    await client.query('COMMIT')
    return { nodeId: plan.nodeId, hostPorts }
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {})
    throw err
  } finally {
    client.release()
  }
}
