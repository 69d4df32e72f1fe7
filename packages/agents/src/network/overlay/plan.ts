/**
 * The overlay's decisions, pure (no I/O): forwarding and neighbour entries to add or remove,
 * the nftables rule sets, and which of our namespaces and links are no longer needed. The
 * driver (index.ts) observes, asks these functions, and executes. Idempotency contract:
 * fed what the previous pass produced, every diff is empty.
 */
import type { TDesiredNetwork } from '@alveary/core/protocol'
import { NODE_TRANSIT_IP, ROUTER_TABLE, transitIp, type OverlayNames } from '../names'

export interface FdbEntry {
  mac: string
  dst: string
}
export interface NeighEntry {
  ip: string
  mac: string
}

const ZERO_MAC = '00:00:00:00:00:00'
const fdbKey = (e: FdbEntry) => `${e.mac}>${e.dst}`

/**
 * VXLAN forwarding entries of one network on this node: an all-zeros entry per peer node
 * (broadcast and unknown traffic is replicated to each, "head-end replication") and one
 * per remote instance MAC (unicast straight to its node; nolearning, so nothing else).
 */
export function desiredFdb(net: TDesiredNetwork, selfVtep: string): FdbEntry[] {
  const out = net.peers.filter((p) => p !== selfVtep).map((dst) => ({ mac: ZERO_MAC, dst }))
  for (const e of net.endpoints) if (e.node !== selfVtep) out.push({ mac: e.mac, dst: e.node })
  return out
}

export function diffFdb(desired: readonly FdbEntry[], observed: readonly FdbEntry[]): { add: FdbEntry[]; del: FdbEntry[] } {
  const want = new Map(desired.map((e) => [fdbKey(e), e]))
  const have = new Map(observed.map((e) => [fdbKey(e), e]))
  return { add: [...want.values()].filter((e) => !have.has(fdbKey(e))), del: [...have.values()].filter((e) => !want.has(fdbKey(e))) }
}

/** Static ARP entries on the router's bridge: every instance of the network, local or remote. */
export function desiredNeigh(net: TDesiredNetwork): NeighEntry[] {
  return net.endpoints.map((e) => ({ ip: e.ip, mac: e.mac }))
}

export function diffNeigh(desired: readonly NeighEntry[], observed: readonly NeighEntry[]): { set: NeighEntry[]; del: NeighEntry[] } {
  const have = new Map(observed.map((e) => [e.ip, e.mac]))
  const want = new Set(desired.map((e) => e.ip))
  return { set: desired.filter((e) => have.get(e.ip) !== e.mac), del: observed.filter((e) => !want.has(e.ip)) }
}

/** A published port: host port on the node → the instance's address and inner port. */
export interface Forward {
  vxlanId: number
  hostPort: number
  ip: string
  port: number
}

/**
 * The node's table. Published ports are sent to the network's transit address (from outside
 * and from the node itself, 127.0.0.1 included: OUTPUT chain plus masquerade, with
 * route_localnet on our transit links only). Traffic from instances is masqueraded to the
 * node's address when it leaves, may not be forwarded to another network (published ports
 * excepted: they are public), and may not reach the node's own services.
 */
export function renderNodeTable(names: OverlayNames, forwards: readonly Forward[], dnsPort: number | null = null): string {
  const t = `${names.prefix}t*`
  const byPort = [...forwards].sort((a, b) => a.hostPort - b.hostPort).map((f) => `${f.hostPort} : ${transitIp(f.vxlanId)}`)
  const dnat = byPort.length ? [`fib daddr type local dnat ip to tcp dport map { ${byPort.join(', ')} }`] : []
  const chain = (head: string, rules: string[]) => [`  chain ${head.split(' ')[0]} {`, `    ${head.split(' ').slice(1).join(' ')}`, ...rules.map((r) => `    ${r}`), '  }']
  return [
    `table inet ${names.nodeTable} {`,
    '  counter cross_network {}',
    '  counter to_node {}',
    ...chain('prerouting type nat hook prerouting priority dstnat; policy accept;', dnat),
    ...chain('output type nat hook output priority -100; policy accept;', dnat),
    ...chain('postrouting type nat hook postrouting priority srcnat; policy accept;', [
      `oifname "${t}" fib saddr type local masquerade`,
      `iifname "${t}" oifname != "${t}" masquerade`,
    ]),
    ...chain('forward type filter hook forward priority filter; policy accept;', [
      `iifname "${t}" oifname "${t}" ct status dnat accept`,
      `iifname "${t}" oifname "${t}" counter name cross_network drop`,
    ]),
    ...chain('input type filter hook input priority filter; policy accept;', [
      `iifname "${t}" ct state established,related accept`,
      // The one service of the node instances may use: the DNS responder (their routers' DNAT).
      ...(dnsPort ? ['udp', 'tcp'].map((p) => `iifname "${t}" ip daddr ${NODE_TRANSIT_IP} ${p} dport ${dnsPort} accept`) : []),
      `iifname "${t}" counter name to_node drop`,
    ]),
    '}',
  ].join('\n')
}

/**
 * A network's router: published ports arriving from the node go to the instance, instances'
 * traffic leaves masqueraded to the transit address, nothing else enters from the node
 * (counted: must stay 0), and instances reach the router itself only with pings. With `dns`,
 * queries to the gateway's port 53 (UDP and TCP) go to the node's responder (dns/responder.ts), leaving
 * masqueraded to the transit address, which tells the responder which network asks.
 */
export function renderRouterTable(forwards: readonly Forward[], dns: { gateway: string; port: number } | null = null): string {
  const dnat = [...forwards].sort((a, b) => a.hostPort - b.hostPort).map((f) => `iifname "up0" tcp dport ${f.hostPort} dnat ip to ${f.ip}:${f.port}`)
  if (dns) for (const p of ['udp', 'tcp']) dnat.push(`iifname "br0" ip daddr ${dns.gateway} ${p} dport 53 dnat ip to ${NODE_TRANSIT_IP}:${dns.port}`)
  return [
    `table inet ${ROUTER_TABLE} {`,
    '  counter from_node {}',
    '  chain prerouting {',
    '    type nat hook prerouting priority dstnat; policy accept;',
    ...dnat.map((r) => `    ${r}`),
    '  }',
    '  chain postrouting {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    '    oifname "up0" masquerade',
    '  }',
    '  chain forward {',
    '    type filter hook forward priority filter; policy drop;',
    '    ct state established,related accept',
    '    iifname "br0" oifname "up0" accept',
    '    iifname "up0" oifname "br0" ct status dnat accept',
    '    iifname "up0" counter name from_node drop',
    '  }',
    '  chain input {',
    '    type filter hook input priority filter; policy drop;',
    '    ct state established,related accept',
    '    iifname "lo" accept',
    '    icmp type echo-request accept',
    '  }',
    '}',
  ].join('\n')
}

/** Replaces a table atomically: one nft transaction that creates, flushes by deletion, and refills. */
export function replaceTable(family: string, name: string, body: string): string {
  return `table ${family} ${name} {}\ndelete table ${family} ${name}\n${body}\n`
}

/** What the router namespace needs for one network, besides the bridge and VXLAN. */
export function routerAddresses(vxlanId: number) {
  return { node: NODE_TRANSIT_IP, router: transitIp(vxlanId) }
}

/**
 * An instance's /etc/resolv.conf: the gateway, where its router answers names. ndots:0 asks
 * for `<app>` as written first (no search domain of the node's in front).
 */
export function resolvConf(gateway: string): string {
  return `# Written by the Alveary agent: names of the tenant network (<app>, <ordinal>.<app>) and beyond.\nnameserver ${gateway}\noptions ndots:0\n`
}

/** Our namespaces, node links and /etc/netns folders that nothing desired needs any more. */
export function garbage(
  names: OverlayNames,
  want: { routers: ReadonlySet<number>; instances: ReadonlySet<string>; lbs: ReadonlySet<number> },
  have: { netns: readonly string[]; nodeLinks: readonly string[]; etc?: readonly string[] },
): { netns: string[]; links: string[]; etc: string[] } {
  const netns = have.netns.filter((n) => {
    const p = names.parseNs(n)
    if (!p) return false
    if (p.kind === 'instance') return !want.instances.has(p.instanceId)
    return !(p.kind === 'router' ? want.routers : want.lbs).has(p.vxlanId)
  })
  const links = have.nodeLinks.filter((l) => {
    const id = names.parseNodeLink(l)
    // A VXLAN still in the node namespace is a creation that did not finish: always redone.
    return id !== null && (l.startsWith(`${names.prefix}x`) || !want.routers.has(id))
  })
  const etc = (have.etc ?? []).filter((n) => {
    const p = names.parseNs(n)
    return p?.kind === 'instance' && !want.instances.has(p.instanceId)
  })
  return { netns, links, etc }
}
