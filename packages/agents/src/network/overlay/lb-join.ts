/**
 * A load-balancing node joining a tenant network: per network whose desired state gives this
 * node an address (`lbAddress`), a namespace `<p>-l<vxlan id>` with a veth into the network's
 * bridge carrying that address and the MAC peers know for it (its endpoint). HAProxy opens
 * its servers of the network from there (`server ... namespace <p>-l<vxlan id>`), so it
 * reaches the instances by their IPs while the node itself has no route into any tenant
 * network: overlapping CIDRs of different tenants stay apart, one namespace each. The
 * namespace has no default route and nothing listens in it: only the network's own
 * addresses are reachable from it.
 */
import { stat } from 'node:fs/promises'
import type { TDesiredNetwork } from '@alveary/core/protocol'
import type { Tools } from '../exec'
import { createIp, type IpLink } from '../links'
import { netnsPath, type OverlayNames } from '../names'
import { bridged, ensureVethNamespace } from './veth'

export interface LbNamespace {
  name: string
  /** Device and inode of the namespace: a re-created one differs, so HAProxy reloads to open it. */
  id: string
}

/** The address and MAC the node has on the network, or null when it does not join it. */
function lbInterfaceOf(net: TDesiredNetwork): { ip: string; mac: string; prefixLength: number } | null {
  if (!net.lbAddress) return null
  const mac = net.endpoints.find((e) => e.ip === net.lbAddress)?.mac
  if (!mac) return null
  return { ip: net.lbAddress, mac, prefixLength: Number(net.cidr.split('/')[1]) }
}

export function createLbJoin({ names, tools }: { names: OverlayNames; tools: Tools }) {
  const ip = createIp(tools)

  return {
    /**
     * Creates or repairs the namespace and its interface (idempotent: a second call with the
     * same network changes nothing). `routerLinks` are the router namespace's links, `netns`
     * the namespaces that exist (updated). The namespace itself is kept while it is wanted, so
     * HAProxy's handle on it stays valid; only its interface is rebuilt when broken.
     */
    async ensure(net: TDesiredNetwork, routerLinks: ReadonlyMap<string, IpLink>, netns: Set<string>, mtu: number): Promise<LbNamespace> {
      const want = lbInterfaceOf(net)
      if (!want) throw new Error(`the desired state lists no endpoint for this node's address ${net.lbAddress ?? ''}`)
      const L = names.lbNs(net.vxlanId)
      const R = names.routerNs(net.vxlanId)
      const V = names.lbVeth(net.vxlanId)
      await ensureVethNamespace(ip, { ns: L, routerNs: R, veth: V, ...want, mtu }, routerLinks, netns, async (veth) => {
        if (!veth || !bridged(veth, mtu)) await ip.batch(R, [`link set ${V} master br0 mtu ${mtu} up`])
      })
      const s = await stat(netnsPath(L))
      return { name: L, id: `${s.dev}:${s.ino}` }
    },
  }
}
