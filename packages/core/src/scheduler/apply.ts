import { attachVolumesSql } from '../volumes/attach'
import { portRange, rejectReason } from './filters'
import type pg from 'pg'
import { buildNodes, nodeReads, readyNodes, uuidArray, type AllocRow, type FreshNode, type NodeRow, type NodeSource } from './load'
import { assume, unassume } from './node-cache'
import type { PlacementRequest, PortRange, SchedNode } from './types'

export interface Planned {
  req: PlacementRequest
  nodeId: string
}

export interface ApplyResult {
  placed: { instanceId: string; nodeId: string; hostPorts: number[] }[]
  /** Refused once re-checked against fresh state, with the filter's reason: re-plan these. */
  conflicts: (Planned & { reason: string })[]
  /** Deleted, stopped or placed elsewhere meanwhile: drop these. */
  gone: string[]
  /** Fresh state of every node in the plan that still exists, including what this plan placed. */
  nodes: SchedNode[]
  /** Nodes whose desired generation this commit bumped: their agents need the new desired state. */
  bumped: string[]
}

/** The lowest free host ports of the range, or null when there are not enough. */
export function freePorts(used: ReadonlySet<number>, count: number, range: PortRange): number[] | null {
  const out: number[] = []
  for (let p = range.min; p <= range.max && out.length < count; p++) if (!used.has(p)) out.push(p)
  return out.length === count ? out : null
}

/**
 * The plan applier: re-checks a batch of planned placements against fresh state and commits
 * the ones that still fit, in one transaction, never holding a lock while planning
 * (optimistic concurrency):
 *
 * 1. bump the desired generation of the plan's nodes, locking their rows in id order (two
 *    appliers never deadlock) until commit: a cordon, drain or re-dedication either
 *    committed before (and is seen below) or waits;
 * 2. re-read those nodes (spec, allocations, host ports in use) in new statements, whose
 *    snapshots include every commit the lock waited for; readiness comes from the hot
 *    store meanwhile;
 * 3. run `rejectReason` (the very filters the planner ran) on each placement in order,
 *    counting the accepted ones, and pick host ports;
 * 4. write every accepted placement in one set-based statement, attach their volumes to
 *    the node (a new epoch when the attachment changes), and commit.
 *
 * Steps 1-2 and 4 are each one round trip (statements sent together), which matters on a
 * busy machine where every wake-up of a backend costs scheduling latency.
 *
 * A node is therefore never over-committed, however many workers or BFF processes plan at
 * once. A node whose placements were all refused keeps its bumped generation (it is
 * reported in `bumped`, so its agent is sent the unchanged desired state at the new
 * generation); when the check refused everything the transaction is rolled back instead.
 */
export async function applyPlan({ pool, hotPool }: NodeSource, plan: readonly Planned[], ports: PortRange): Promise<ApplyResult> {
  const result: ApplyResult = { placed: [], conflicts: [], gone: [], nodes: [], bumped: [] }
  if (!plan.length) return result
  const nodeIds = [...new Set(plan.map((p) => p.nodeId))].sort()
  const ids = uuidArray(nodeIds)
  const reads = nodeReads(ids, true)
  const client = await pool.connect()
  let open = false
  try {
    open = true
    const [results, ready] = await Promise.all([
      client.query(
        `BEGIN;
         UPDATE "Node" AS n SET "desiredGeneration" = n."desiredGeneration" + 1
         FROM (SELECT id FROM "Node" WHERE id = ANY(${ids}) ORDER BY id FOR NO KEY UPDATE) AS l WHERE n.id = l.id RETURNING n.id;
         ${reads.spec};
         ${reads.alloc}`,
      ) as unknown as Promise<pg.QueryResult[]>,
      readyNodes(hotPool, nodeIds),
    ])
    const [, locked, spec, allocs] = results as [unknown, pg.QueryResult<{ id: string }>, pg.QueryResult<NodeRow>, pg.QueryResult<AllocRow>]
    const fresh = buildNodes(spec.rows, allocs.rows, ready)

    const ctx = { ports }
    const accepted: (Planned & { hostPorts: number[]; node: FreshNode })[] = []
    for (const p of plan) {
      const node = fresh.get(p.nodeId)
      const why = node ? rejectReason(node, p.req, ctx) : 'node removed'
      const hostPorts = node && why === null ? freePorts(node.usedPorts, p.req.portCount, portRange(node, ports)) : null
      if (!node || !hostPorts) {
        result.conflicts.push({ ...p, reason: why ?? 'no free host ports' })
        continue
      }
      assume(node, p.req)
      hostPorts.forEach((x) => node.usedPorts.add(x))
      accepted.push({ ...p, hostPorts, node })
    }

    let placedIds = new Set<string>()
    if (accepted.length) {
      const instances = uuidArray(accepted.map((a) => a.req.instanceId))
      const ports = accepted.map((a) => `"${a.hostPorts.join(',')}"`).join(',')
      const [written] = (await client.query(
        // "i.id = ANY" lets PostgreSQL fetch the batch's rows by key instead of hashing the table.
        `UPDATE "Instance" AS i SET "nodeId" = v.node, "hostPorts" = string_to_array(v.ports, ',')::int[], "pendingReason" = NULL
         FROM unnest(${instances}, ${uuidArray(accepted.map((a) => a.nodeId))}, '{${ports}}'::text[]) AS v(id, node, ports)
         WHERE i.id = ANY(${instances}) AND i.id = v.id AND i."nodeId" IS NULL AND i."desiredState" = 'running'
         RETURNING i.id;
         ${attachVolumesSql(instances)};
         COMMIT`,
      )) as unknown as [pg.QueryResult<{ id: string }>]
      open = false
      placedIds = new Set(written.rows.map((r) => r.id))
    }
    for (const a of accepted) {
      if (placedIds.has(a.req.instanceId)) result.placed.push({ instanceId: a.req.instanceId, nodeId: a.nodeId, hostPorts: a.hostPorts })
      else {
        // Not placed after all (deleted, stopped or placed elsewhere): give back what the check counted for it.
        unassume(a.node, a.req)
        a.hostPorts.forEach((x) => a.node.usedPorts.delete(x))
        result.gone.push(a.req.instanceId)
      }
    }
    if (accepted.length) result.bumped = locked.rows.map((r) => r.id)
    else {
      await client.query('ROLLBACK')
      open = false
    }
    for (const { usedPorts: _, ...n } of fresh.values()) result.nodes.push(n)
    return result
  } catch (err) {
    if (open) await client.query('ROLLBACK').catch(() => {})
    throw err
  } finally {
    client.release()
  }
}
