import { freePorts } from './apply'
import { portRange, rejectReason } from './filters'
import { loadFreshNodes, loadNodes, type NodeSource } from './load'
import { planOne } from './plan'
import type { PlacementRequest, PortRange } from './types'

/**
 * Holds capacity on a node for an instance that keeps running where it is for now (the
 * target of a move): a move is two placements for a while. The node is chosen by the same
 * filters and scorers as any placement, among `candidates`, then re-checked and committed
 * the way the plan applier commits (node row locked, fresh read, `rejectReason`), as a
 * Reservation the scheduler counts like an instance, host ports included.
 */
export async function reserveCapacity(
  source: NodeSource,
  req: PlacementRequest,
  opts: { moveId: string; candidates: readonly string[]; ports: PortRange },
): Promise<{ nodeId: string; hostPorts: number[] } | { reason: string }> {
  if (!opts.candidates.length) return { reason: 'no candidate node' }
  const plan = planOne(await loadNodes(source, [...opts.candidates]), req, { ports: opts.ports })
  if ('reason' in plan) return plan
  const client = await source.pool.connect()
  try {
    await client.query('BEGIN')
    await client.query('SELECT id FROM "Node" WHERE id = $1 FOR NO KEY UPDATE', [plan.nodeId])
    const node = (await loadFreshNodes(client, source.hotPool, [plan.nodeId])).get(plan.nodeId)
    const why = node ? rejectReason(node, req, { ports: opts.ports }) : 'node removed'
    const hostPorts = node && why === null ? freePorts(node.usedPorts, req.portCount, portRange(node, opts.ports)) : null
    if (!hostPorts) {
      await client.query('ROLLBACK')
      return { reason: why ?? 'no free host ports' }
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
