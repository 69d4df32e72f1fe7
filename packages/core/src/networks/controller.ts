import type { Controller } from '../controllers/registry'
import type { ChangeBus } from '../store/change-bus'
import type { Db } from '../store/db'
import type { HotStore } from '../store/hot-store'
import { loadLeases } from './node-state'
import { fingerprintOf } from './topology'

/**
 * Keeps every node of a network told where the network's instances and the load-balancing
 * nodes that joined it are, and which instances answer their app's name. A node's desired
 * state changing (a placement, a move, a deletion, a load balancer joining) may change a
 * network's endpoints, and an instance's state or readiness its names; when a network's
 * fingerprint (ip@node and readiness of each placed member) changes, every node that hosts or
 * hosted it gets its desired state pushed again, so its forwarding entries follow the move and
 * its DNS responder the readiness. Level-based: the fingerprints are only a cache of what was
 * last pushed; a new leader starts empty and pushes each network once.
 */
export function createNetworkPeersController({ db, hot, bus, resyncIntervalMs }: { db: Db; hot: Pick<HotStore, 'statusesOf'>; bus: ChangeBus; resyncIntervalMs: number }) {
  const pushed = new Map<string, { fingerprint: string; nodes: Set<string> }>()

  async function sync(networkIds: string[]): Promise<void> {
    if (!networkIds.length) return
    const leases = await loadLeases({ db, hot }, networkIds)
    const bump = new Set<string>()
    for (const id of networkIds) {
      const mine = leases.filter((l) => l.networkId === id)
      const fingerprint = fingerprintOf(mine)
      const nodes = new Set(mine.flatMap((l) => (l.nodeId ? [l.nodeId] : [])))
      const before = pushed.get(id)
      if (before?.fingerprint === fingerprint) continue
      for (const n of nodes) bump.add(n)
      for (const n of before?.nodes ?? []) bump.add(n)
      if (nodes.size) pushed.set(id, { fingerprint, nodes })
      else pushed.delete(id)
    }
    if (!bump.size) return
    await db.node.updateMany({ where: { id: { in: [...bump] } }, data: { desiredGeneration: { increment: 1 } } })
    for (const nodeId of bump) bus.publish({ kind: 'node-desired', nodeId })
  }

  async function handle(nodeId: string | undefined): Promise<void> {
    if (nodeId === undefined) {
      const all = await db.network.findMany({ select: { id: true } })
      const ids = new Set([...all.map((n) => n.id), ...pushed.keys()])
      return sync([...ids])
    }
    const hosted = await db.ipLease.findMany({ where: { instance: { nodeId } }, distinct: ['networkId'], select: { networkId: true } })
    const joined = await db.lbAddress.findMany({ where: { nodeId }, select: { networkId: true } })
    const ids = new Set([...hosted, ...joined].map((h) => h.networkId))
    for (const [id, p] of pushed) if (p.nodes.has(nodeId)) ids.add(id)
    return sync([...ids])
  }

  const controller: Controller = {
    name: 'network-peers',
    handle,
    onChange: (c) => (c.kind === 'node-desired' ? { id: c.nodeId, priority: 'high' } : c.kind === 'fleet' && c.what === 'node' && c.nodeId ? { id: c.nodeId, priority: 'high' } : null),
    periodic: { everyMs: resyncIntervalMs, priority: 'low', ids: () => [undefined] },
  }
  /** An app's instances changed state or readiness (agent reports): its networks' names may follow. */
  const names: Controller = {
    name: 'network-names',
    async handle(appId) {
      if (!appId) return
      const nets = await db.ipLease.findMany({ where: { instance: { appId } }, distinct: ['networkId'], select: { networkId: true } })
      return sync(nets.map((n) => n.networkId))
    },
    onChange: (c) => (c.kind === 'lb-backends' ? { id: c.appId, priority: 'high' } : null),
  }
  return { controller, names }
}
