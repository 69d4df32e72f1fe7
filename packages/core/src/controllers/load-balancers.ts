import type { LbNodes } from '../load-balancers/nodes'
import type { ChangeBus } from '../store/change-bus'
import type { Db } from '../store/db'
import type { Controller } from './registry'

/**
 * Keeps load balancers' backends current: when an app's instances change state, readiness
 * or placement, the load-balancing nodes in front of it get a new desired state (the agent
 * applies membership through the data plane's runtime API, without reloads).
 */
export function createLoadBalancerController({ db, bus, lbNodes }: { db: Db; bus: ChangeBus; lbNodes: LbNodes }): Controller {
  return {
    name: 'lb-backends',
    async handle(appId) {
      if (!appId) return
      const app = await db.app.findUnique({ where: { id: appId }, select: { tenantId: true } })
      if (!app) return
      const nodeIds = await lbNodes.nodesServing({ appId, tenantId: app.tenantId })
      if (!nodeIds.length) return
      await db.node.updateMany({ where: { id: { in: nodeIds } }, data: { desiredGeneration: { increment: 1 } } })
      nodeIds.forEach((nodeId) => bus.publish({ kind: 'node-desired', nodeId }))
    },
    onChange: (c) => (c.kind === 'lb-backends' ? { id: c.appId, priority: 'critical' } : null),
  }
}
