/**
 * Which tenant networks each load-balancing node joins, and its address on each. A node joins
 * the network of every app its load balancers target when its data plane can (overlay, and
 * HAProxy with network namespaces: capability `lbNetworks`); its backends there are then the
 * instances' IPs (desired.ts). The decision is pure (`planLbAddresses`); the controller reads
 * the rows, allocates or releases addresses and pushes the nodes' desired states.
 */
import type { Controller } from '../controllers/registry'
import { parseIp } from '../networks/ipam'
import type { TLbRule } from '../schemas/load-balancer'
import { allocateLbAddress } from '../services/networks'
import type { ChangeBus } from '../store/change-bus'
import type { Db } from '../store/db'
import { lbNodeWhere } from './nodes'

export interface JoinNode {
  id: string
  /** Serves only this tenant's load balancers (null: every tenant's). */
  dedicatedTenantId: string | null
  /** Overlay node whose data plane can reach instances inside tenant networks. */
  canJoin: boolean
}

export interface JoinLb {
  tenantId: string
  appIds: readonly string[]
}

export type NodeNetwork = { nodeId: string; networkId: string }

const keyOf = (p: NodeNetwork) => `${p.nodeId}/${p.networkId}`

/** The (node, network) pairs wanted, and how they differ from the addresses that exist. */
export function planLbAddresses(
  nodes: readonly JoinNode[],
  lbs: readonly JoinLb[],
  apps: ReadonlyMap<string, { tenantId: string; networkId: string | null }>,
  existing: readonly NodeNetwork[],
): { add: NodeNetwork[]; remove: NodeNetwork[] } {
  const want = new Map<string, NodeNetwork>()
  for (const node of nodes) {
    if (!node.canJoin) continue
    for (const lb of lbs) {
      if (node.dedicatedTenantId && node.dedicatedTenantId !== lb.tenantId) continue
      for (const appId of lb.appIds) {
        const app = apps.get(appId)
        // Only the load balancer's own tenant's networks, whatever a row says.
        if (!app?.networkId || app.tenantId !== lb.tenantId) continue
        const p = { nodeId: node.id, networkId: app.networkId }
        want.set(keyOf(p), p)
      }
    }
  }
  const have = new Set(existing.map(keyOf))
  return { add: [...want.values()].filter((p) => !have.has(keyOf(p))), remove: existing.filter((p) => !want.has(keyOf(p))) }
}

/** What an agent said in hello lets its load balancers join tenant networks. */
export const canJoinNetworks = (n: { networkMode: string; address: string; capabilities: unknown }) =>
  n.networkMode === 'overlay' && parseIp(n.address) !== null && (n.capabilities as { lbNetworks?: boolean } | null)?.lbNetworks === true

export function createLbAddressController({ db, bus, resyncIntervalMs }: { db: Db; bus: ChangeBus; resyncIntervalMs: number }): Controller {
  async function handle(): Promise<void> {
    const [nodes, lbs, existing] = await Promise.all([
      db.node.findMany({ where: lbNodeWhere(), select: { id: true, dedicatedTenantId: true, networkMode: true, address: true, capabilities: true } }),
      db.loadBalancer.findMany({ where: { deletedAt: null }, select: { tenantId: true, listeners: { select: { rules: true } } } }),
      db.lbAddress.findMany({ select: { nodeId: true, networkId: true } }),
    ])
    const joinLbs = lbs.map((lb) => ({ tenantId: lb.tenantId, appIds: lb.listeners.flatMap((l) => (l.rules as TLbRule[]).flatMap((r) => r.targets.map((t) => t.appId))) }))
    const apps = await db.app.findMany({ where: { id: { in: [...new Set(joinLbs.flatMap((l) => l.appIds))] }, deletedAt: null }, select: { id: true, tenantId: true, networkId: true } })
    const plan = planLbAddresses(
      nodes.map((n) => ({ id: n.id, dedicatedTenantId: n.dedicatedTenantId, canJoin: canJoinNetworks(n) })),
      joinLbs,
      new Map(apps.map((a) => [a.id, a])),
      existing,
    )
    const touched = new Set<string>()
    for (const p of plan.add) if (await db.$transaction((tx) => allocateLbAddress(tx, p.networkId, p.nodeId))) touched.add(p.nodeId)
    for (const p of plan.remove) {
      await db.lbAddress.deleteMany({ where: { nodeId: p.nodeId, networkId: p.networkId } })
      touched.add(p.nodeId)
    }
    if (!touched.size) return
    // The node's networks and backends changed; the network-peers controller then tells the networks' other nodes.
    await db.node.updateMany({ where: { id: { in: [...touched] } }, data: { desiredGeneration: { increment: 1 } } })
    for (const nodeId of touched) bus.publish({ kind: 'node-desired', nodeId })
  }
  return {
    name: 'lb-addresses',
    handle,
    // Load balancers created, changed or deleted; nodes marked for load balancing or describing themselves anew.
    onChange: (c) => ((c.kind === 'tenant' && c.what === 'lb') || (c.kind === 'fleet' && c.what === 'node') ? { priority: 'high' } : null),
    periodic: { everyMs: resyncIntervalMs, priority: 'low', ids: () => [undefined] },
  }
}
