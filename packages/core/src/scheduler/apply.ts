import { attachVolumes } from '../volumes/attach'
import { portRange, rejectReason } from './filters'
import { loadFreshNodes, type FreshNode, type NodeSource } from './load'
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
 * 2. re-read those nodes (spec, allocations, host ports in use; readiness from the hot
 *    store) in a new statement, whose snapshot includes every commit the lock waited for;
 * 3. run `rejectReason` (the very filters the planner ran) on each placement in order,
 *    counting the accepted ones, and pick host ports;
 * 4. write every accepted placement in one set-based statement.
 *
 * A node is therefore never over-committed, however many workers or BFF processes plan at
 * once. A node whose placements were all refused keeps its bumped generation (it is reported
 * in `bumped`, so its agent is sent the unchanged desired state at the new generation);
 * when nothing at all is placed the transaction is rolled back instead.
 */
export async function applyPlan({ pool, hotPool }: NodeSource, plan: readonly Planned[], ports: PortRange): Promise<ApplyResult> {
  const result: ApplyResult = { placed: [], conflicts: [], gone: [], nodes: [], bumped: [] }
  if (!plan.length) return result
  const nodeIds = [...new Set(plan.map((p) => p.nodeId))].sort()
  const client = await pool.connect()
  try {
    await client.query('BEGIN')
    const { rows: locked } = await client.query<{ id: string }>(
      `UPDATE "Node" AS n SET "desiredGeneration" = n."desiredGeneration" + 1
       FROM (SELECT id FROM "Node" WHERE id = ANY($1::uuid[]) ORDER BY id FOR NO KEY UPDATE) AS l WHERE n.id = l.id RETURNING n.id`,
      [nodeIds],
    )
    const fresh = await loadFreshNodes(client, hotPool, nodeIds)

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

    if (accepted.length) {
      const { rows } = await client.query<{ id: string }>(
        // "i.id = ANY" lets PostgreSQL fetch the batch's rows by key instead of hashing the table.
        `UPDATE "Instance" AS i SET "nodeId" = v.node, "hostPorts" = string_to_array(v.ports, ',')::int[], "pendingReason" = NULL
         FROM unnest($1::uuid[], $2::uuid[], $3::text[]) AS v(id, node, ports)
         WHERE i.id = ANY($1::uuid[]) AND i.id = v.id AND i."nodeId" IS NULL AND i."desiredState" = 'running'
         RETURNING i.id`,
        [accepted.map((a) => a.req.instanceId), accepted.map((a) => a.nodeId), accepted.map((a) => a.hostPorts.join(','))],
      )
      const ok = new Set(rows.map((r) => r.id))
      for (const a of accepted) {
        if (ok.has(a.req.instanceId)) result.placed.push({ instanceId: a.req.instanceId, nodeId: a.nodeId, hostPorts: a.hostPorts })
        else {
          // Not placed after all: give back what the check counted for it.
          unassume(a.node, a.req)
          a.hostPorts.forEach((x) => a.node.usedPorts.delete(x))
          result.gone.push(a.req.instanceId)
        }
      }
    }
    if (result.placed.length) {
      // Placing attaches the instances' volumes to the node (a new epoch when the attachment changes).
      await attachVolumes(client, result.placed.map((p) => p.instanceId))
      await client.query('COMMIT')
      result.bumped = locked.map((r) => r.id)
    } else await client.query('ROLLBACK')
    for (const { usedPorts: _, ...n } of fresh.values()) result.nodes.push(n)
    return result
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {})
    throw err
  } finally {
    client.release()
  }
}
