/**
 * What the overlay calls things on a node, pure. Everything it creates carries the agent's
 * prefix (several agents on one machine, and nothing of the node's own is ever touched):
 *   router namespace per network  <p>-n<vxlan id>   (bridge br0, VXLAN vx0, uplink up0)
 *   transit veth in the node      <p>t<vxlan id>    (169.254.0.1 ↔ the network's transit address)
 *   VXLAN before it moves         <p>x<vxlan id>
 *   instance namespace            <p>-i-<instance id> (eth0)
 *   instance veth in the router   <p>v<10 hex of the instance id>
 *   load-balancer namespace       <p>-l<vxlan id>   (eth0 with the node's address on the network;
 *   its veth in the router        <p>l<vxlan id>     HAProxy's servers of the network connect from it)
 *   nftables table in the node    inet alveary_<p>
 * and for sandboxed instances on host networking (isolated.ts):
 *   instance namespace            <p>-s-<instance id> (eth0)
 *   its veth in the node          <p>s<10 hex of the instance id>
 *   nftables table in the node    inet alveary_<p>_s
 */

import { createHash } from 'node:crypto'

/** Link names are at most 15 characters: the prefix leaves room for "t" + 8 digits. */
export const ZPREFIX = /^[a-z][a-z0-9]{0,3}$/

export const VXLAN_PORT = 4789
/** VXLAN over IPv4 adds 50 bytes (outer Ethernet 14 + IP 20 + UDP 8 + VXLAN 8). */
export const VXLAN_OVERHEAD = 50
/** The node side of every transit link. */
export const NODE_TRANSIT_IP = '169.254.0.1'
export const ROUTER_TABLE = 'alveary'

export function overlayNames(prefix: string) {
  if (!ZPREFIX.test(prefix)) throw new Error(`network prefix "${prefix}" must be 1-4 lowercase letters or digits, starting with a letter`)
  return {
    prefix,
    routerNs: (vxlanId: number) => `${prefix}-n${vxlanId}`,
    instanceNs: (instanceId: string) => `${prefix}-i-${instanceId}`,
    transit: (vxlanId: number) => `${prefix}t${vxlanId}`,
    vxlanTmp: (vxlanId: number) => `${prefix}x${vxlanId}`,
    instanceVeth: (instanceId: string) => `${prefix}v${instanceId.replace(/-/g, '').slice(0, 10)}`,
    lbNs: (vxlanId: number) => `${prefix}-l${vxlanId}`,
    lbVeth: (vxlanId: number) => `${prefix}l${vxlanId}`,
    nodeTable: `alveary_${prefix}`,
    isolatedNs: (instanceId: string) => `${prefix}-s-${instanceId}`,
    isolatedVeth: (instanceId: string) => `${prefix}s${instanceId.replace(/-/g, '').slice(0, 10)}`,
    isolatedTable: `alveary_${prefix}_s`,
    /** The instance id of an isolated namespace of ours; null: not one. */
    parseIsolatedNs(name: string): string | null {
      return new RegExp(`^${prefix}-s-([0-9a-f-]{36})$`).exec(name)?.[1] ?? null
    },
    /** True for a node-side veth of an isolated namespace of ours. */
    isIsolatedVeth: (name: string) => new RegExp(`^${prefix}s[0-9a-f]{10}$`).test(name),
    /** Which router or load-balancer namespace (vxlan id) or instance (id) a namespace name belongs to; null: not ours. */
    parseNs(name: string): { kind: 'router' | 'lb'; vxlanId: number } | { kind: 'instance'; instanceId: string } | null {
      const r = new RegExp(`^${prefix}-([nl])(\\d{1,8})$`).exec(name)
      if (r) return { kind: r[1] === 'n' ? 'router' : 'lb', vxlanId: Number(r[2]) }
      const i = new RegExp(`^${prefix}-i-([0-9a-f-]{36})$`).exec(name)
      return i ? { kind: 'instance', instanceId: i[1]! } : null
    },
    /** The vxlan id of a node-side link we created (transit or not yet moved VXLAN); null: not ours. */
    parseNodeLink(name: string): number | null {
      const m = new RegExp(`^${prefix}[tx](\\d{1,8})$`).exec(name)
      return m ? Number(m[1]) : null
    },
  }
}
export type OverlayNames = ReturnType<typeof overlayNames>

/** A prefix of its own per data directory: "a" and three base-36 characters of its hash. */
export function defaultPrefix(dataDir: string): string {
  const h = createHash('sha256').update(dataDir).digest()
  return `a${(h.readUInt32BE(0) % 36 ** 3).toString(36).padStart(3, '0')}`
}

export const netnsPath = (name: string) => `/run/netns/${name}`

/**
 * The network's address on its transit link, unique per network on a node and the same on
 * every node: 169.254.<id high byte>.<id low byte>. The control plane hands out VXLAN ids in
 * 0x1000-0xa8ff, which keeps these away from 169.254.0.0/24 and 169.254.169.254.
 */
export function transitIp(vxlanId: number): string {
  return `169.254.${(vxlanId >>> 8) & 255}.${vxlanId & 255}`
}
