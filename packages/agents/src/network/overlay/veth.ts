/**
 * A namespace hanging off a network's bridge: its eth0 is the far end of a veth whose near end
 * lives in the router namespace. Instances (instances.ts) and a load-balancing node's
 * namespace (lb-join.ts) are built and repaired alike; they differ only in how the near end is
 * put into the bridge, which the caller does.
 */
import { isUp, type Ip, type IpLink } from '../links'

export interface VethNamespace {
  /** The namespace that gets eth0. */
  ns: string
  /** The router namespace holding the near end. */
  routerNs: string
  /** The near end's name. */
  veth: string
  mac: string
  ip: string
  prefixLength: number
  mtu: number
}

/**
 * Creates the namespace when missing and the veth pair when either end is gone, then gives
 * eth0 its MAC, MTU and one address (lo up too). `routerLinks`: the router namespace's links;
 * `netns`: the namespaces that exist (updated). `nearEnd` sets the router's end, given it as
 * it is, or undefined when the pair was just created. Resolves whether it was.
 */
export async function ensureVethNamespace(
  ip: Ip,
  v: VethNamespace,
  routerLinks: ReadonlyMap<string, IpLink>,
  netns: Set<string>,
  nearEnd: (veth: IpLink | undefined) => Promise<unknown>,
): Promise<boolean> {
  if (!netns.has(v.ns)) {
    await ip.run(['netns', 'add', v.ns])
    netns.add(v.ns)
  }
  let links = await ip.links(['-n', v.ns, 'addr', 'show'])
  const veth = routerLinks.get(v.veth)
  const create = !links.has('eth0') || !veth
  if (create) {
    // The veth may be going already (its peer's namespace was deleted).
    if (veth) await ip.run(['-n', v.routerNs, 'link', 'del', v.veth]).catch(() => {})
    if (links.has('eth0')) await ip.run(['-n', v.ns, 'link', 'del', 'eth0'])
    await ip.run(['-n', v.routerNs, 'link', 'add', v.veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', v.ns])
    await nearEnd(undefined)
    links = await ip.links(['-n', v.ns, 'addr', 'show'])
  } else await nearEnd(veth)
  const eth0 = links.get('eth0')!
  const cmds: string[] = []
  if (!isUp(links.get('lo'))) cmds.push('link set lo up')
  if (eth0.address !== v.mac || eth0.mtu !== v.mtu || !isUp(eth0)) cmds.push(`link set eth0 address ${v.mac} mtu ${v.mtu} up`)
  const addrs = eth0.addr_info?.filter((a) => a.family === 'inet') ?? []
  for (const a of addrs) if (a.local !== v.ip || a.prefixlen !== v.prefixLength) cmds.push(`addr del ${a.local}/${a.prefixlen} dev eth0`)
  if (!addrs.some((a) => a.local === v.ip && a.prefixlen === v.prefixLength)) cmds.push(`addr add ${v.ip}/${v.prefixLength} dev eth0`)
  await ip.batch(v.ns, cmds)
  return create
}

/** The near end is in the bridge, up, with the MTU. */
export const bridged = (veth: IpLink, mtu: number) => veth.master === 'br0' && veth.mtu === mtu && isUp(veth)
