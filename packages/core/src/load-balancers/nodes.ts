import type { Clock } from '../clock'
/**
 * Load-balancing nodes: which nodes serve a tenant's load balancers, what they serve (their
 * part of the desired state), what they report, and whether a drain reached them.
 */
import type { TDesiredLb, TLbReport, TLbServerStat } from '../protocol/lb'
import type { TLbRule } from '../schemas/load-balancer'
import type { ChangeBus } from '../store/change-bus'
import type { Db, Hot } from '../store/db'
import type { TInstanceTemplate } from '../schemas/app'
import { canJoinNetworks } from './addresses'
import { desiredLoadBalancers, endpointsOf, type BackendInstance } from './desired'

/** Nodes an operator marked for load balancing whose agent offers a data plane; `tenantId` limits them to those it may use. */
export const lbNodeWhere = (tenantId?: string) => ({
  loadBalancing: true,
  lbDriver: { not: null },
  ...(tenantId ? { OR: [{ dedicatedTenantId: null }, { dedicatedTenantId: tenantId }] } : {}),
})

export function createLbNodes({ db, hot, clock, bus }: { db: Db; hot: Hot; clock: Clock; bus: ChangeBus }) {
  /** Load balancers (not deleted) with their listeners; `where` narrows them. */
  const loadLbs = (where: object) =>
    db.loadBalancer.findMany({
      where: { deletedAt: null, ...where },
      orderBy: { createdAt: 'asc' },
      select: { id: true, tenantId: true, name: true, algorithm: true, stickySeconds: true, drainSeconds: true, retryUnanswered: true, listeners: { orderBy: { port: 'asc' }, select: { port: true, protocol: true, rules: true } } },
    })
  const targetsApp = (appId: string) => ({ listeners: { some: { rules: { array_contains: [{ targets: [{ appId }] }] } } } })

  return {
    /** The load-balancing part of a node's desired state. */
    async desiredFor(nodeId: string): Promise<TDesiredLb[]> {
      const node = await db.node.findFirst({
        where: { id: nodeId, ...lbNodeWhere() },
        select: { dedicatedTenantId: true, networkMode: true, address: true, capabilities: true, lbAddresses: { select: { networkId: true } } },
      })
      if (!node) return []
      // Tenant networks this node joined (addresses.ts): their instances are reached by IP.
      const joined = new Set(canJoinNetworks(node) ? node.lbAddresses.map((a) => a.networkId) : [])
      const lbs = (await loadLbs(node.dedicatedTenantId ? { tenantId: node.dedicatedTenantId } : {})).map((lb) => ({
        ...lb,
        listeners: lb.listeners.map((l) => ({ ...l, rules: l.rules as TLbRule[] })),
      }))
      const appIds = [...new Set(lbs.flatMap((lb) => lb.listeners.flatMap((l) => l.rules.flatMap((r) => r.targets.map((t) => t.appId)))))]
      const instances = await db.instance.findMany({
        where: { appId: { in: appIds }, nodeId: { not: null }, desiredState: 'running' },
        select: {
          id: true,
          appId: true,
          hostPorts: true,
          drainingSince: true,
          nodeId: true,
          node: { select: { address: true } },
          appRevision: { select: { spec: true } },
          lease: { select: { networkId: true, ip: true } },
        },
      })
      const statuses = new Map(
        (await hot.instanceStatus.findMany({ where: { instanceId: { in: instances.map((i) => i.id) } }, select: { instanceId: true, nodeId: true, state: true, ready: true } })).map((s) => [s.instanceId, s]),
      )
      const byApp = new Map<string, BackendInstance[]>()
      for (const i of instances) {
        const s = statuses.get(i.id)
        const ready = !!s && s.nodeId === i.nodeId && s.state === 'running' && s.ready !== false
        const ports = (i.appRevision.spec as TInstanceTemplate).ports
        const endpoints = endpointsOf({ ports, hostPorts: i.hostPorts, nodeAddress: i.node!.address, lease: i.lease }, joined)
        byApp.set(i.appId, [...(byApp.get(i.appId) ?? []), { id: i.id, appId: i.appId, endpoints, ready, draining: i.drainingSince !== null }])
      }
      return desiredLoadBalancers(lbs, byApp)
    },

    /** Load-balancing nodes that serve the load balancers in front of an app, and their longest drain. */
    async drainFor(appId: string): Promise<{ drainMs: number; nodeIds: string[] }> {
      const app = await db.app.findUnique({ where: { id: appId }, select: { tenantId: true } })
      if (!app) return { drainMs: 0, nodeIds: [] }
      const lbs = await db.loadBalancer.findMany({ where: { tenantId: app.tenantId, deletedAt: null, ...targetsApp(appId) }, select: { drainSeconds: true } })
      if (!lbs.length) return { drainMs: 0, nodeIds: [] }
      const nodes = await db.node.findMany({ where: lbNodeWhere(app.tenantId), select: { id: true } })
      // Without a node to serve them the load balancers hold no connection: nothing to drain.
      if (!nodes.length) return { drainMs: 0, nodeIds: [] }
      return { drainMs: Math.max(...lbs.map((l) => l.drainSeconds)) * 1000, nodeIds: nodes.map((n) => n.id) }
    },

    /** Every node applied its generation, or is not ready (it gets a fresh desired state when it returns). */
    async acked(generations: Record<string, number>): Promise<boolean> {
      const ids = Object.keys(generations)
      if (!ids.length) return true
      const [applied, ready] = await Promise.all([
        hot.lbNodeStatus.groupBy({ by: ['nodeId'], where: { nodeId: { in: ids } }, _max: { generation: true } }),
        hot.nodeStatus.findMany({ where: { nodeId: { in: ids }, state: 'ready', connected: true }, select: { nodeId: true } }),
      ])
      const gen = new Map(applied.map((a) => [a.nodeId, a._max.generation ?? 0]))
      const readyIds = new Set(ready.map((r) => r.nodeId))
      return ids.every((id) => !readyIds.has(id) || (gen.get(id) ?? 0) >= generations[id]!)
    },

    /** Records what a node reports about the load balancers it serves (and forgets the ones it no longer lists). */
    async report(nodeId: string, generation: number, reports: TLbReport[]): Promise<void> {
      const known = await db.loadBalancer.findMany({ where: { id: { in: reports.map((r) => r.id) } }, select: { id: true, tenantId: true } })
      const tenantOf = new Map(known.map((k) => [k.id, k.tenantId]))
      const mine = reports.filter((r) => tenantOf.has(r.id))
      const before = new Map((await hot.lbNodeStatus.findMany({ where: { nodeId }, select: { lbId: true, state: true, message: true } })).map((s) => [s.lbId, s]))
      await hot.$transaction([
        hot.lbNodeStatus.deleteMany({ where: { nodeId, lbId: { notIn: mine.map((r) => r.id) } } }),
        ...mine.map((r) =>
          hot.lbNodeStatus.upsert({
            where: { lbId_nodeId: { lbId: r.id, nodeId } },
            create: { lbId: r.id, nodeId, state: r.state, message: r.message, generation },
            update: { state: r.state, message: r.message, generation, updatedAt: clock.now() },
          }),
        ),
      ])
      // The consoles showing a load balancer whose state on this node changed.
      for (const r of mine) {
        const b = before.get(r.id)
        if (!b || b.state !== r.state || b.message !== r.message) bus.publish({ kind: 'tenant', tenantId: tenantOf.get(r.id)!, what: 'lb', id: r.id })
      }
    },

    /**
     * Replaces what a node said about its servers' traffic. Only load balancers the node may
     * serve and instances of their tenant count: a node cannot write another tenant's figures.
     */
    async recordStats(nodeId: string, servers: readonly TLbServerStat[]): Promise<void> {
      const node = await db.node.findFirst({ where: { id: nodeId, ...lbNodeWhere() }, select: { dedicatedTenantId: true } })
      const lbIds = [...new Set(servers.map((s) => s.lbId))]
      const [lbs, instances] = node
        ? await Promise.all([
            db.loadBalancer.findMany({ where: { id: { in: lbIds }, ...(node.dedicatedTenantId ? { tenantId: node.dedicatedTenantId } : {}) }, select: { id: true, tenantId: true } }),
            db.instance.findMany({ where: { id: { in: [...new Set(servers.map((s) => s.instanceId))] } }, select: { id: true, tenantId: true } }),
          ])
        : [[], []]
      const lbTenant = new Map(lbs.map((l) => [l.id, l.tenantId]))
      const instanceTenant = new Map(instances.map((i) => [i.id, i.tenantId]))
      const rows = servers.filter((s) => lbTenant.has(s.lbId) && lbTenant.get(s.lbId) === instanceTenant.get(s.instanceId))
      const now = clock.now()
      await hot.$transaction([
        hot.lbServerStat.deleteMany({ where: { nodeId } }),
        hot.lbServerStat.createMany({ data: rows.map((r) => ({ lbId: r.lbId, nodeId, instanceId: r.instanceId, current: r.current, perSecond: r.perSecond, updatedAt: now })) }),
      ])
    },

    /** Bumps the desired generation of the nodes serving load balancers in front of `appId` (or of `tenantId`). */
    async nodesServing(o: { appId?: string; tenantId: string }): Promise<string[]> {
      if (o.appId) {
        const any = await db.loadBalancer.findFirst({ where: { tenantId: o.tenantId, deletedAt: null, ...targetsApp(o.appId) }, select: { id: true } })
        if (!any) return []
      }
      return (await db.node.findMany({ where: lbNodeWhere(o.tenantId), select: { id: true } })).map((n) => n.id)
    },
  }
}
export type LbNodes = ReturnType<typeof createLbNodes>
