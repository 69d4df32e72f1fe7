import type { Clock } from '../clock'
import type { ChangeBus } from '../store/change-bus'
import type { Db } from '../store/db'
import type { HotStore } from '../store/hot-store'

/**
 * Takes instances off a node so the scheduler places them again (node lost, drain).
 * The instance keeps its identity; the node's agent sees it gone from its desired state
 * and stops its copy. Instances that were stopping anyway are released instead.
 */
export async function relocate(
  deps: { db: Db; hot: HotStore; bus: ChangeBus; clock: Clock; schedule(ids: string[]): Promise<void> },
  nodeId: string,
  instanceIds: string[],
  why: string,
): Promise<string[]> {
  if (!instanceIds.length) return []
  const { db, hot, bus } = deps
  const rows = await db.instance.findMany({ where: { id: { in: instanceIds }, nodeId }, select: { id: true, tenantId: true, desiredState: true } })
  const moving = rows.filter((r) => r.desiredState === 'running').map((r) => r.id)
  const stopping = rows.filter((r) => r.desiredState === 'stopped').map((r) => r.id)
  await db.$transaction([
    db.instance.updateMany({ where: { id: { in: moving }, nodeId }, data: { nodeId: null, hostPorts: [], pendingReason: why } }),
    db.instance.updateMany({ where: { id: { in: stopping }, nodeId, releasedAt: null }, data: { releasedAt: deps.clock.now() } }),
    db.node.update({ where: { id: nodeId }, data: { desiredGeneration: { increment: 1 } } }),
  ])
  await hot.forgetStatuses(moving)
  bus.publish({ kind: 'node-desired', nodeId })
  bus.publish({ kind: 'capacity', nodeId })
  for (const t of new Set(rows.map((r) => r.tenantId))) bus.publish({ kind: 'tenant', tenantId: t, what: 'instances' })
  bus.publish({ kind: 'fleet', what: 'instances', nodeId })
  await deps.schedule(moving)
  return moving
}
