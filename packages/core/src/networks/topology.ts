/**
 * Which networks a node hosts and what it must know about them: pure, from rows the loader
 * reads (networks/node-state.ts). A node hosts a network when one of the network's instances
 * is placed on it or when its load balancers joined the network (an address of its own); its
 * peers are the other overlay nodes hosting the network.
 */
import type { TDesiredNetwork, TInstanceInterface, TNetworkEndpoint } from '../protocol/network'
import { formatIp, gatewayMacOf, gatewayOf, macOf, parseCidr, parseIp } from './ipam'

export interface LeaseRow {
  /** null for a load-balancing node's address (`lb`). */
  instanceId: string | null
  /** A load-balancing node's own address on the network (load-balancers/addresses.ts), not an instance's. */
  lb: boolean
  ip: string
  networkId: string
  app: string
  ordinal: number
  /** Where the instance is placed: null when unplaced (no endpoint anywhere). */
  nodeId: string | null
  /** Underlay address of that node when it runs the overlay (an IPv4 literal), else null. */
  vtep: string | null
  /** `<app>` answers it (readyForNames); a load-balancing node's address: true (it has no name). */
  ready: boolean
}

/**
 * Whether an instance is among its app's name's answers, like a Kubernetes Service's ready
 * endpoints: its node reports it running there, its readiness check (if any) passes, and it is
 * neither being stopped nor drained (scaled away behind a load balancer: no new clients).
 */
export function readyForNames(
  placement: { nodeId: string | null; desiredState: 'running' | 'stopped'; draining: boolean },
  status: { nodeId: string; state: string; ready: boolean | null } | undefined,
): boolean {
  if (!placement.nodeId || placement.desiredState !== 'running' || placement.draining || !status) return false
  return status.nodeId === placement.nodeId && status.state === 'running' && status.ready !== false
}

export interface NetworkRow {
  id: string
  cidr: string
  vxlanId: number
}

export function interfaceOf(network: NetworkRow, ip: string): TInstanceInterface {
  const cidr = parseCidr(network.cidr)
  const addr = parseIp(ip)
  if (!cidr || addr === null) throw new Error(`network ${network.id} has a malformed CIDR or lease (${network.cidr}, ${ip})`)
  return { networkId: network.id, ip, mac: macOf(addr), prefixLength: cidr.prefix, gateway: formatIp(gatewayOf(cidr)) }
}

/** The desired networks of one node: its networks, their peers and every placed endpoint. */
export function networksOfNode(nodeId: string, networks: readonly NetworkRow[], leases: readonly LeaseRow[]): TDesiredNetwork[] {
  const out: TDesiredNetwork[] = []
  for (const n of networks) {
    const mine = leases.filter((l) => l.networkId === n.id)
    const self = mine.find((l) => l.nodeId === nodeId)?.vtep ?? null
    const lbAddress = mine.find((l) => l.lb && l.nodeId === nodeId)?.ip
    const endpoints: TNetworkEndpoint[] = mine
      .filter((l): l is LeaseRow & { vtep: string } => l.vtep !== null)
      .map((l) => ({ ip: l.ip, mac: macOf(parseIp(l.ip)!), node: l.vtep, app: l.lb ? '' : l.app, ordinal: l.lb ? 0 : l.ordinal, ready: l.ready }))
      .sort((a, b) => (parseIp(a.ip)! - parseIp(b.ip)!))
    const peers = [...new Set(endpoints.map((e) => e.node))].filter((v) => v !== self).sort()
    const cidr = parseCidr(n.cidr)!
    out.push({ networkId: n.id, vxlanId: n.vxlanId, cidr: n.cidr, gateway: formatIp(gatewayOf(cidr)), gatewayMac: gatewayMacOf(n.vxlanId), peers, endpoints, ...(lbAddress && { lbAddress }) })
  }
  return out.sort((a, b) => a.vxlanId - b.vxlanId)
}

/** What every node of a network must agree on (where members are, which answer names): a change means their desired states must be pushed again. */
export function fingerprintOf(leases: readonly LeaseRow[]): string {
  return leases
    .filter((l) => l.vtep !== null)
    .map((l) => `${l.ip}@${l.vtep}${l.ready ? '' : '!'}`)
    .sort()
    .join(',')
}
