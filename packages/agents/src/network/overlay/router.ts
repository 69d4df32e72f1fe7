/**
 * A network's router namespace on this node: the bridge br0 with the distributed gateway, the
 * VXLAN segment vx0, and the uplink up0 to the node (its transit link). Also the node-wide
 * settings the routers rely on: forwarding, and the MTU left inside a VXLAN.
 */
import type { Logger } from 'pino'
import type { TDesiredNetwork } from '@alveary/core/protocol'
import type { Tools } from '../exec'
import { isUp, type Ip, type IpLink } from '../links'
import { VXLAN_OVERHEAD, VXLAN_PORT, type OverlayNames } from '../names'
import { routerAddresses } from './plan'

export function createRouters(o: { names: OverlayNames; vtep: string; tools: Tools; ip: Ip; log: Logger }) {
  const { names, vtep, tools, ip, log } = o
  let mtu: number | null = null

  async function sysctl(ns: string | null, settings: Record<string, string>): Promise<void> {
    if (ns) {
      await tools.run('ip', ['netns', 'exec', ns, 'sysctl', '-qw', ...Object.entries(settings).map(([k, v]) => `${k}=${v}`)])
      return
    }
    await tools.run('sysctl', ['-qw', ...Object.entries(settings).map(([k, v]) => `${k}=${v}`)])
  }

  async function brNetfilter(R: string): Promise<Record<string, string>> {
    const has = await tools.run('ip', ['netns', 'exec', R, 'sh', '-c', 'test -e /proc/sys/net/bridge/bridge-nf-call-iptables && echo yes || true'])
    return has.trim() === 'yes' ? { 'net.bridge.bridge-nf-call-iptables': '0', 'net.bridge.bridge-nf-call-arptables': '0' } : {}
  }

  return {
    /** The MTU of the tenant networks: the underlay's, less the VXLAN header (looked up once). */
    async mtu(): Promise<number> {
      if (mtu !== null) return mtu
      const links = await ip.json<IpLink[]>(['addr', 'show'])
      const dev = links.find((l) => l.addr_info?.some((a) => a.family === 'inet' && a.local === vtep))
      if (!dev?.mtu) throw new Error(`no interface has the underlay address ${vtep}`)
      mtu = dev.mtu - VXLAN_OVERHEAD
      return mtu
    },

    /** The node forwards between its transit links and the underlay. */
    forward: () => sysctl(null, { 'net.ipv4.ip_forward': '1' }),

    /**
     * Creates or repairs the router namespace of one network and returns its links. `netns`: the
     * namespaces that exist (updated); `nodeLinks`: the node's links; `m`: the MTU.
     */
    async ensure(net: TDesiredNetwork, netns: Set<string>, nodeLinks: ReadonlyMap<string, IpLink>, m: number): Promise<Map<string, IpLink>> {
      const R = names.routerNs(net.vxlanId)
      const prefixLength = Number(net.cidr.split('/')[1])
      const fresh = !netns.has(R)
      if (fresh) {
        await ip.run(['netns', 'add', R])
        netns.add(R)
        log.info({ network: net.networkId, vxlanId: net.vxlanId, cidr: net.cidr }, 'network: router namespace created')
      }
      const links = await ip.links(['-n', R, '-d', 'addr', 'show'])
      const cmds: string[] = []
      if (!isUp(links.get('lo'))) cmds.push('link set lo up')
      const br = links.get('br0')
      if (!br) cmds.push('link add br0 type bridge')
      if (!br || br.address !== net.gatewayMac || br.mtu !== m || !isUp(br)) cmds.push(`link set br0 address ${net.gatewayMac} mtu ${m} up`)
      if (!br?.addr_info?.some((a) => a.family === 'inet' && a.local === net.gateway && a.prefixlen === prefixLength)) cmds.push(`addr replace ${net.gateway}/${prefixLength} dev br0`)
      await ip.batch(R, cmds)

      const vx = links.get('vx0')
      const info = vx?.linkinfo?.info_data
      if (!vx || info?.id !== net.vxlanId || info?.local !== vtep || info?.port !== VXLAN_PORT) {
        if (vx) await ip.run(['-n', R, 'link', 'del', 'vx0'])
        // Created in the node's namespace (its UDP socket lives there, on the underlay), then moved in.
        const tmp = names.vxlanTmp(net.vxlanId)
        if (nodeLinks.has(tmp)) await ip.run(['link', 'del', tmp])
        await ip.run(['link', 'add', tmp, 'type', 'vxlan', 'id', String(net.vxlanId), 'dstport', String(VXLAN_PORT), 'local', vtep, 'nolearning'])
        await ip.run(['link', 'set', tmp, 'netns', R])
        await ip.batch(R, [`link set ${tmp} name vx0`, `link set vx0 master br0 mtu ${m} up`])
      } else if (vx.master !== 'br0' || vx.mtu !== m || !isUp(vx)) await ip.batch(R, [`link set vx0 master br0 mtu ${m} up`])

      const { node, router } = routerAddresses(net.vxlanId)
      const T = names.transit(net.vxlanId)
      const up = links.get('up0')
      if (!up || !nodeLinks.has(T)) {
        if (up) await ip.run(['-n', R, 'link', 'del', 'up0'])
        if (nodeLinks.has(T)) await ip.run(['link', 'del', T])
        await ip.run(['link', 'add', T, 'type', 'veth', 'peer', 'name', 'up0', 'netns', R])
        await ip.batch(null, [`addr add ${node} peer ${router}/32 dev ${T}`, `link set ${T} up`])
        await ip.batch(R, [`addr add ${router} peer ${node}/32 dev up0`, 'link set up0 up', `route replace default via ${node} dev up0`])
        // 127.0.0.1 → published port leaves through this link; allowed on our link only.
        await sysctl(null, { [`net.ipv4.conf.${T}.route_localnet`]: '1' })
      }
      if (fresh || !up) {
        // The router forwards; bridged traffic between instances stays out of netfilter (speed, no conntrack).
        await sysctl(R, { 'net.ipv4.ip_forward': '1', ...(await brNetfilter(R)) })
      }
      return ip.links(['-n', R, 'link', 'show'])
    },
  }
}
