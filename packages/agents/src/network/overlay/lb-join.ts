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
import { netnsPath, type OverlayNames } from '../names'

interface Link {
  ifname: string
  address?: string
  mtu?: number
  master?: string
  flags?: string[]
  addr_info?: Array<{ family: string; local: string; prefixlen: number }>
}

export interface LbNamespace {
  name: string
  /** Device and inode of the namespace: a re-created one differs, so HAProxy reloads to open it. */
  id: string
}

const isUp = (l: Link | undefined) => !!l?.flags?.includes('UP')

/** The address and MAC the node has on the network, or null when it does not join it. */
export function lbInterfaceOf(net: TDesiredNetwork): { ip: string; mac: string; prefixLength: number } | null {
  if (!net.lbAddress) return null
  const mac = net.endpoints.find((e) => e.ip === net.lbAddress)?.mac
  if (!mac) return null
  return { ip: net.lbAddress, mac, prefixLength: Number(net.cidr.split('/')[1]) }
}

export function createLbJoin({ names, tools }: { names: OverlayNames; tools: Tools }) {
  const ip = (args: string[]) => tools.run('ip', args)
  const links = async (ns: string) => new Map((await tools.json<Link[]>('ip', ['-j', '-n', ns, 'addr', 'show'])).map((l) => [l.ifname, l]))
  const batch = (ns: string, cmds: string[]) => (cmds.length ? tools.run('ip', ['-n', ns, '-batch', '-'], cmds.join('\n') + '\n') : Promise.resolve(''))

  return {
    /**
     * Creates or repairs the namespace and its interface (idempotent: a second call with the
     * same network changes nothing). `routerLinks` are the router namespace's links, `netns`
     * the namespaces that exist (updated). The namespace itself is kept while it is wanted, so
     * HAProxy's handle on it stays valid; only its interface is rebuilt when broken.
     */
    async ensure(net: TDesiredNetwork, routerLinks: ReadonlyMap<string, Link>, netns: Set<string>, mtu: number): Promise<LbNamespace> {
      const want = lbInterfaceOf(net)
      if (!want) throw new Error(`the desired state lists no endpoint for this node's address ${net.lbAddress ?? ''}`)
      const L = names.lbNs(net.vxlanId)
      const R = names.routerNs(net.vxlanId)
      const V = names.lbVeth(net.vxlanId)
      if (!netns.has(L)) {
        await ip(['netns', 'add', L])
        netns.add(L)
      }
      let mine = await links(L)
      const veth = routerLinks.get(V)
      if (!mine.has('eth0') || !veth) {
        if (veth) await ip(['-n', R, 'link', 'del', V]).catch(() => {})
        if (mine.has('eth0')) await ip(['-n', L, 'link', 'del', 'eth0'])
        await ip(['-n', R, 'link', 'add', V, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', L])
        await batch(R, [`link set ${V} master br0 mtu ${mtu} up`])
        mine = await links(L)
      } else if (veth.master !== 'br0' || veth.mtu !== mtu || !isUp(veth)) await batch(R, [`link set ${V} master br0 mtu ${mtu} up`])
      const eth0 = mine.get('eth0')!
      const cmds: string[] = []
      if (!isUp(mine.get('lo'))) cmds.push('link set lo up')
      if (eth0.address !== want.mac || eth0.mtu !== mtu || !isUp(eth0)) cmds.push(`link set eth0 address ${want.mac} mtu ${mtu} up`)
      const addrs = eth0.addr_info?.filter((a) => a.family === 'inet') ?? []
      for (const a of addrs) if (a.local !== want.ip || a.prefixlen !== want.prefixLength) cmds.push(`addr del ${a.local}/${a.prefixlen} dev eth0`)
      if (!addrs.some((a) => a.local === want.ip && a.prefixlen === want.prefixLength)) cmds.push(`addr add ${want.ip}/${want.prefixLength} dev eth0`)
      await batch(L, cmds)
      const s = await stat(netnsPath(L))
      return { name: L, id: `${s.dev}:${s.ino}` }
    },
  }
}
