import type { TDesiredNetwork, TInstanceInterface } from '../protocol/network'
import type { Db } from '../store/db'
import type { HotStore } from '../store/hot-store'
import { parseIp } from './ipam'
import { interfaceOf, networksOfNode, readyForNames, type LeaseRow, type NetworkRow } from './topology'

/** Where leases and instances' reported states are read. */
export interface NetworkStateDeps {
  db: Db
  hot: Pick<HotStore, 'statusesOf'>
}

const isIpv4 = (s: string) => parseIp(s) !== null

/** Leases of the given networks with where their instances run and whether they are ready, and the load-balancing nodes' addresses (the overlay's view). */
export async function loadLeases({ db, hot }: NetworkStateDeps, networkIds: readonly string[]): Promise<LeaseRow[]> {
  const [lbRows, rows] = await Promise.all([
    db.lbAddress.findMany({
      where: { networkId: { in: [...networkIds] } },
      select: { ip: true, networkId: true, nodeId: true, node: { select: { address: true, networkMode: true } } },
    }),
    db.ipLease.findMany({
      where: { networkId: { in: [...networkIds] } },
      select: {
        instanceId: true,
        ip: true,
        networkId: true,
        instance: { select: { ordinal: true, nodeId: true, releasedAt: true, desiredState: true, drainingSince: true, app: { select: { name: true } }, node: { select: { address: true, networkMode: true } } } },
      },
    }),
  ])
  const statuses = await hot.statusesOf(rows.filter((r) => r.instance.nodeId !== null).map((r) => r.instanceId))
  const lbs = lbRows.map(
    (r): LeaseRow => ({
      instanceId: null,
      lb: true,
      ip: r.ip,
      networkId: r.networkId,
      app: '',
      ordinal: 0,
      nodeId: r.nodeId,
      vtep: r.node.networkMode === 'overlay' && isIpv4(r.node.address) ? r.node.address : null,
      ready: true,
    }),
  )
  return rows.map((r): LeaseRow => {
    const node = r.instance.node
    const placed = r.instance.nodeId !== null && r.instance.releasedAt === null
    return {
      instanceId: r.instanceId,
      lb: false,
      ip: r.ip,
      networkId: r.networkId,
      app: r.instance.app.name,
      ordinal: r.instance.ordinal,
      nodeId: placed ? r.instance.nodeId : null,
      vtep: placed && node && node.networkMode === 'overlay' && isIpv4(node.address) ? node.address : null,
      ready: placed && readyForNames({ nodeId: r.instance.nodeId, desiredState: r.instance.desiredState, draining: r.instance.drainingSince !== null }, statuses.get(r.instanceId)),
    }
  }).concat(lbs)
}

export interface NodeNetworkState {
  networks: TDesiredNetwork[]
  interfaces: Map<string, TInstanceInterface[]>
}

/**
 * The network part of these nodes' desired states: their networks and each of their instances'
 * interface, in two queries however many nodes (agents reconnecting, a change fanned out).
 * `staged` (node → instances a move brings there) counts like placed instances here: the node
 * hosts their networks and prepares their interfaces before they move.
 */
export async function networkStatesOf(deps: NetworkStateDeps, nodeIds: readonly string[], staged: ReadonlyMap<string, readonly string[]> = new Map()): Promise<Map<string, NodeNetworkState>> {
  const stagedOn = new Map([...staged].flatMap(([nodeId, ids]) => ids.map((id) => [id, nodeId] as const)))
  const { db } = deps
  const [rows, joined] = await Promise.all([
    db.ipLease.findMany({
      where: { OR: [{ instance: { nodeId: { in: [...nodeIds] } } }, ...(stagedOn.size ? [{ instanceId: { in: [...stagedOn.keys()] } }] : [])] },
      select: { instanceId: true, ip: true, instance: { select: { nodeId: true } }, network: { select: { id: true, cidr: true, vxlanId: true } } },
    }),
    // Networks the nodes' load balancers joined: hosted too, with no instance of them there.
    db.lbAddress.findMany({
      where: { nodeId: { in: [...nodeIds] } },
      select: { nodeId: true, network: { select: { id: true, cidr: true, vxlanId: true } } },
    }),
  ])
  const wanted = new Set(nodeIds)
  const local = rows.flatMap((l) => [
    ...(l.instance.nodeId && wanted.has(l.instance.nodeId) ? [{ ...l, nodeId: l.instance.nodeId }] : []),
    ...(stagedOn.has(l.instanceId) ? [{ ...l, nodeId: stagedOn.get(l.instanceId)! }] : []),
  ])
  const leasesOf = groupBy(await loadLeases(deps, [...new Set([...local, ...joined].map((l) => l.network.id))]), (l) => l.networkId)
  const localOf = groupBy(local, (l) => l.nodeId)
  const joinedOf = groupBy(joined, (j) => j.nodeId)
  return new Map(
    nodeIds.map((nodeId) => {
      const mine = localOf.get(nodeId) ?? []
      const networks = new Map<string, NetworkRow>([...mine, ...(joinedOf.get(nodeId) ?? [])].map((l) => [l.network.id, l.network]))
      const interfaces = new Map(mine.map((l) => [l.instanceId, [interfaceOf(l.network, l.ip)]]))
      const leases = [...networks.keys()].flatMap((id) => leasesOf.get(id) ?? [])
      return [nodeId, { networks: networksOfNode(nodeId, [...networks.values()], leases), interfaces }]
    }),
  )
}

function groupBy<T>(xs: readonly T[], key: (x: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>()
  for (const x of xs) {
    const list = out.get(key(x))
    if (list) list.push(x)
    else out.set(key(x), [x])
  }
  return out
}
