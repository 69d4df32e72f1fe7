/**
 * Tenant networks on the wire: what an agent advertises (overlay or host networking), the
 * networks a node hosts and each instance's interface. The overlay driver builds per network
 * a bridge + VXLAN segment and per instance a namespace with this interface.
 */
import { z } from 'zod'

/** overlay: the agent can create namespaces, bridges, VXLAN and nftables rules; host: instances share the node's network. */
export const ZNetworkMode = z.enum(['host', 'overlay'])
export type TNetworkMode = z.infer<typeof ZNetworkMode>

/**
 * VXLAN ids the platform hands out. Agents derive each network's transit address from it
 * (169.254.<id>>8>.<id&255>, away from 169.254.0.0/24 and 169.254.169.254), which bounds the
 * range: about 39,000 networks in one fleet.
 */
export const VXLAN_ID_MIN = 0x1000
export const VXLAN_ID_MAX = 0xa8ff

const ZIpv4 = z.string().regex(/^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/, 'an IPv4 address')
const ZMac = z.string().regex(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/, 'a lowercase MAC address')
const ZCidr = z.string().regex(/^[\d.]{7,15}\/\d{1,2}$/, 'a CIDR').max(18)

/** An instance's address on its network: allocated by the control plane, kept when it moves. */
export const ZInstanceInterface = z.object({
  networkId: z.string().uuid(),
  ip: ZIpv4,
  mac: ZMac,
  prefixLength: z.number().int().min(16).max(29),
  gateway: ZIpv4,
})
export type TInstanceInterface = z.infer<typeof ZInstanceInterface>

/**
 * Another member of the network: where its MAC lives (head-end replication, static
 * neighbours) and its names. A load-balancing node that joined the network is a member with
 * an empty `app` (no name resolves to it).
 */
export const ZNetworkEndpoint = z.object({
  ip: ZIpv4,
  mac: ZMac,
  /** Underlay (VTEP) address of the node it runs on. */
  node: ZIpv4,
  app: z.string().max(40),
  ordinal: z.number().int().min(0).max(100_000),
  /**
   * Whether `<app>` answers it: running where it is placed, passing its readiness check if it
   * has one, and not draining (a Service's ready endpoints). `<ordinal>.<app>` answers regardless.
   * Absent from older control planes: ready.
   */
  ready: z.boolean().default(true),
})
export type TNetworkEndpoint = z.infer<typeof ZNetworkEndpoint>

/** A network this node hosts (it runs at least one of its instances, or its load balancers reach them). */
export const ZDesiredNetwork = z.object({
  networkId: z.string().uuid(),
  vxlanId: z.number().int().min(VXLAN_ID_MIN).max(VXLAN_ID_MAX),
  cidr: ZCidr,
  gateway: ZIpv4,
  gatewayMac: ZMac,
  /** Underlay addresses of the other nodes hosting the network. */
  peers: z.array(ZIpv4).max(10_000),
  /** Every placed instance of the network, this node's included. */
  endpoints: z.array(ZNetworkEndpoint).max(4096),
  /**
   * This node's own address on the network when its load-balancer data plane joins it (its
   * servers there carry the network's id): the agent gives it to a namespace of its own with a
   * veth into the bridge, and reaches the instances from there by their IPs.
   */
  lbAddress: ZIpv4.optional(),
})
export type TDesiredNetwork = z.infer<typeof ZDesiredNetwork>

/**
 * The port an instance listens on inside its namespace, per app port: the containerPort when
 * the app gives one, else 8080, 8081… (skipping ports taken by containerPorts). A pure function
 * of the spec, so it stays the same when the instance moves: peers and load balancers use IP:port.
 */
export function innerPorts(ports: readonly { containerPort?: number | null }[]): number[] {
  const taken = new Set(ports.flatMap((p) => (p.containerPort ? [p.containerPort] : [])))
  let next = 8080
  return ports.map((p) => {
    if (p.containerPort) return p.containerPort
    while (taken.has(next)) next++
    taken.add(next)
    return next++
  })
}
