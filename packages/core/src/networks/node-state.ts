import type { TDesiredNetwork, TInstanceInterface } from '../protocol/network'
import type { Db } from '../store/db'
import { parseIp } from './ipam'
import { interfaceOf, networksOfNode, type LeaseRow, type NetworkRow } from './topology'

const isIpv4 = (s: string) => parseIp(s) !== null

/** Leases of the given networks with where their instances run (the overlay's view). */
export async function loadLeases(db: Db, networkIds: readonly string[]): Promise<LeaseRow[]> {
  const rows = await db.ipLease.findMany({
    where: { networkId: { in: [...networkIds] } },
    select: {
      instanceId: true,
      ip: true,
      networkId: true,
      instance: { select: { ordinal: true, nodeId: true, releasedAt: true, app: { select: { name: true } }, node: { select: { address: true, networkMode: true } } } },
    },
  })
  return rows.map((r) => {
    const node = r.instance.node
    const placed = r.instance.nodeId !== null && r.instance.releasedAt === null
    return {
      instanceId: r.instanceId,
      ip: r.ip,
      networkId: r.networkId,
      app: r.instance.app.name,
      ordinal: r.instance.ordinal,
      nodeId: placed ? r.instance.nodeId : null,
      vtep: placed && node && node.networkMode === 'overlay' && isIpv4(node.address) ? node.address : null,
    }
  })
}

/** The network part of a node's desired state: its networks and each of its instances' interface. */
export async function networkStateOf(db: Db, nodeId: string): Promise<{ networks: TDesiredNetwork[]; interfaces: Map<string, TInstanceInterface[]> }> {
  const local = await db.ipLease.findMany({
    where: { instance: { nodeId } },
    select: { instanceId: true, ip: true, network: { select: { id: true, cidr: true, vxlanId: true } } },
  })
  const networks = new Map<string, NetworkRow>(local.map((l) => [l.network.id, l.network]))
  const interfaces = new Map(local.map((l) => [l.instanceId, [interfaceOf(l.network, l.ip)]]))
  const leases = await loadLeases(db, [...networks.keys()])
  return { networks: networksOfNode(nodeId, [...networks.values()], leases), interfaces }
}
