/**
 * The overlay network driver: per network a router namespace (bridge with the distributed
 * gateway, VXLAN segment, uplink to the node), per instance a namespace with a veth into the
 * bridge. Level-triggered: every pass observes what exists (ip -j, bridge -j, nft), creates
 * or fixes what the desired state needs and removes what it no longer needs, among the
 * things it names with its prefix only. A pass runs on every desired state, before an
 * instance starts, and periodically, so a manual `ip link del` or an agent restart converges.
 *
 * Staged instances (a move is bringing them here while their source still serves) get their
 * namespace and interface with the same IP and MAC, but the bridge end of their veth stays
 * down and out of the bridge: the address is never live on two nodes. When the instance is
 * then desired here, activate() only links that veth (one command), instead of a full pass
 * on the start's critical path.
 */
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import path from 'node:path'
import type { Logger } from 'pino'
import { innerPorts, type TDesired, type TDesiredInstance, type TDesiredNetwork, type TInstanceInterface } from '@alveary/core/protocol'
import { nameTable } from '../dns/names'
import type { DnsResponder } from '../dns/responder'
import type { Tools } from '../exec'
import { createLbJoin, type LbNamespace } from './lb-join'
import { netnsPath, ROUTER_TABLE, transitIp, VXLAN_OVERHEAD, VXLAN_PORT, type OverlayNames } from '../names'
import {
  desiredFdb,
  desiredNeigh,
  diffFdb,
  diffNeigh,
  garbage,
  renderNodeTable,
  renderRouterTable,
  replaceTable,
  resolvConf,
  routerAddresses,
  type FdbEntry,
  type Forward,
  type NeighEntry,
} from './plan'

export interface OverlayOptions {
  names: OverlayNames
  /** This node's underlay address (VXLAN local end, what peers send to). */
  vtep: string
  tools: Tools
  log: Logger
  /** Periodic pass, default 10 s. */
  resyncMs?: number
  /** Answers the networks' names (in this agent's process, so in the node's namespace); none: no DNS. */
  dns?: DnsResponder
  /** Where per-namespace files live (iproute2's convention: `ip netns exec` mounts them over /etc). */
  etcNetns?: string
  /** Called after a pass that changed the load-balancer namespaces (lb-join.ts): the data plane re-applies. */
  onLbChange?: () => void
}

/** What a runtime driver needs to start an instance on its network. */
export interface PreparedNetwork {
  /** The instance's network namespace (bind mount), to join with nsenter or Podman's `ns:` mode. */
  netnsPath: string
  ip: string
  /** Port each app port listens on inside the namespace (PORT and PORT_<NAME>). */
  innerPorts: number[]
  /** The file to show the instance at /etc/resolv.conf (its network's names); absent without DNS. */
  resolvConf?: string
}

interface IpLink {
  ifname: string
  address?: string
  mtu?: number
  master?: string
  flags?: string[]
  operstate?: string
  linkinfo?: { info_kind?: string; info_data?: { id?: number; local?: string; port?: number } }
  addr_info?: Array<{ family: string; local: string; prefixlen: number }>
}

const isUp = (l: IpLink | undefined) => !!l?.flags?.includes('UP')

/** What ensureInstance needs of an instance, desired or staged. */
type Attachable = { instanceId: string; interfaces: TInstanceInterface[] }

/** A staged instance whose interface is prepared (unlinked), as of the last pass. */
interface Staged {
  vxlanId: number
  iface: TInstanceInterface
  /** Process instances: their namespace (containers bring their own, so only their network is prepared). */
  netns: string | null
  resolvConf?: string
}

export function createOverlay(opts: OverlayOptions) {
  const { names, vtep, tools, log, dns } = opts
  const etcNetns = opts.etcNetns ?? '/etc/netns'
  const ip = (args: string[]) => tools.run('ip', args)
  const ipJson = <T>(args: string[]) => tools.json<T>('ip', ['-j', ...args])
  const batch = (ns: string | null, cmds: string[]) => (cmds.length ? tools.run('ip', [...(ns ? ['-n', ns] : []), '-batch', '-'], cmds.join('\n') + '\n') : Promise.resolve(''))

  let desired: TDesired | null = null
  let requested = 0
  let completed = 0
  let running = false
  let closed = false
  const waiters: Array<{ want: number; resolve(): void }> = []
  /** Instances whose namespace is ready (path) or failed (why), as of the last pass. */
  const ready = new Map<string, PreparedNetwork>()
  const failed = new Map<string, string>()
  /** Networks this node's load balancers joined: their namespace, as of the last pass. */
  let lbJoined = new Map<string, LbNamespace>()
  const lbJoin = createLbJoin({ names, tools })
  const staged = new Map<string, Staged>()
  /**
   * Instances linked by activate(), with the generation of the desired state that made them
   * wanted: a pass still working from an older state (one that staged them) must not unlink them.
   */
  const activated = new Map<string, number>()
  /** Waiters for the next desired state (a staged instance not announced yet). */
  let nextDesired: Array<() => void> = []
  /**
   * Instances whose namespace is their container's own: Docker cannot start a container in a
   * namespace given by path, so it starts one with none and the overlay adopts it (instance id →
   * the container's pid), moving the instance's name onto it and building eth0 there.
   */
  const attached = new Map<string, number>()
  /** Last rule set applied per namespace ('' = the node's). */
  const tables = new Map<string, string>()
  let mtu: number | null = null
  const timer = setInterval(() => kick(), opts.resyncMs ?? 10_000)
  timer.unref()

  let looping: Promise<void> = Promise.resolve()
  function kick(): number {
    const want = ++requested
    if (!running) looping = loop()
    return want
  }

  async function loop(): Promise<void> {
    running = true
    try {
      while (completed < requested && !closed) {
        const target = requested
        const d = desired
        if (d) {
          try {
            await pass(d)
          } catch (err) {
            log.warn({ err }, 'network pass failed; retrying on the next one')
          }
        }
        completed = target
        for (const w of waiters.splice(0)) {
          if (w.want <= completed) w.resolve()
          else waiters.push(w)
        }
      }
    } finally {
      running = false
    }
  }

  function until(want: number): Promise<void> {
    if (completed >= want || closed) return Promise.resolve()
    return new Promise((resolve) => waiters.push({ want, resolve }))
  }

  async function underlayMtu(): Promise<number> {
    if (mtu !== null) return mtu
    const links = await ipJson<IpLink[]>(['addr', 'show'])
    const dev = links.find((l) => l.addr_info?.some((a) => a.family === 'inet' && a.local === vtep))
    if (!dev?.mtu) throw new Error(`no interface has the underlay address ${vtep}`)
    mtu = dev.mtu - VXLAN_OVERHEAD
    return mtu
  }

  async function sysctl(ns: string | null, settings: Record<string, string>): Promise<void> {
    if (ns) {
      await tools.run('ip', ['netns', 'exec', ns, 'sysctl', '-qw', ...Object.entries(settings).map(([k, v]) => `${k}=${v}`)])
      return
    }
    await tools.run('sysctl', ['-qw', ...Object.entries(settings).map(([k, v]) => `${k}=${v}`)])
  }

  /** Router namespace of one network: bridge + gateway, VXLAN, uplink. Returns its links. */
  async function ensureNetwork(net: TDesiredNetwork, netns: Set<string>, nodeLinks: Map<string, IpLink>, m: number): Promise<Map<string, IpLink>> {
    const R = names.routerNs(net.vxlanId)
    const prefixLength = Number(net.cidr.split('/')[1])
    const fresh = !netns.has(R)
    if (fresh) {
      await ip(['netns', 'add', R])
      netns.add(R)
      log.info({ network: net.networkId, vxlanId: net.vxlanId, cidr: net.cidr }, 'network: router namespace created')
    }
    let links = new Map((await ipJson<IpLink[]>(['-n', R, '-d', 'addr', 'show'])).map((l) => [l.ifname, l]))
    const cmds: string[] = []
    if (!isUp(links.get('lo'))) cmds.push('link set lo up')
    const br = links.get('br0')
    if (!br) cmds.push('link add br0 type bridge')
    if (!br || br.address !== net.gatewayMac || br.mtu !== m || !isUp(br)) cmds.push(`link set br0 address ${net.gatewayMac} mtu ${m} up`)
    if (!br?.addr_info?.some((a) => a.family === 'inet' && a.local === net.gateway && a.prefixlen === prefixLength)) cmds.push(`addr replace ${net.gateway}/${prefixLength} dev br0`)
    await batch(R, cmds)

    const vx = links.get('vx0')
    const info = vx?.linkinfo?.info_data
    if (!vx || info?.id !== net.vxlanId || info?.local !== vtep || info?.port !== VXLAN_PORT) {
      if (vx) await ip(['-n', R, 'link', 'del', 'vx0'])
      // Created in the node's namespace (its UDP socket lives there, on the underlay), then moved in.
      const tmp = names.vxlanTmp(net.vxlanId)
      if (nodeLinks.has(tmp)) await ip(['link', 'del', tmp])
      await ip(['link', 'add', tmp, 'type', 'vxlan', 'id', String(net.vxlanId), 'dstport', String(VXLAN_PORT), 'local', vtep, 'nolearning'])
      await ip(['link', 'set', tmp, 'netns', R])
      await batch(R, [`link set ${tmp} name vx0`, `link set vx0 master br0 mtu ${m} up`])
    } else if (vx.master !== 'br0' || vx.mtu !== m || !isUp(vx)) await batch(R, [`link set vx0 master br0 mtu ${m} up`])

    const { node, router } = routerAddresses(net.vxlanId)
    const T = names.transit(net.vxlanId)
    const up = links.get('up0')
    if (!up || !nodeLinks.has(T)) {
      if (up) await ip(['-n', R, 'link', 'del', 'up0'])
      if (nodeLinks.has(T)) await ip(['link', 'del', T])
      await ip(['link', 'add', T, 'type', 'veth', 'peer', 'name', 'up0', 'netns', R])
      await batch(null, [`addr add ${node} peer ${router}/32 dev ${T}`, `link set ${T} up`])
      await batch(R, [`addr add ${router} peer ${node}/32 dev up0`, 'link set up0 up', `route replace default via ${node} dev up0`])
      // 127.0.0.1 → published port leaves through this link; allowed on our link only.
      await sysctl(null, { [`net.ipv4.conf.${T}.route_localnet`]: '1' })
    }
    if (fresh || !up) {
      // The router forwards; bridged traffic between instances stays out of netfilter (speed, no conntrack).
      await sysctl(R, { 'net.ipv4.ip_forward': '1', ...(await brNetfilter(R)) })
    }
    links = new Map((await ipJson<IpLink[]>(['-n', R, 'link', 'show'])).map((l) => [l.ifname, l]))
    return links
  }

  async function brNetfilter(R: string): Promise<Record<string, string>> {
    const has = await tools.run('ip', ['netns', 'exec', R, 'sh', '-c', 'test -e /proc/sys/net/bridge/bridge-nf-call-iptables && echo yes || true'])
    return has.trim() === 'yes' ? { 'net.bridge.bridge-nf-call-iptables': '0', 'net.bridge.bridge-nf-call-arptables': '0' } : {}
  }

  /** Points the instance's namespace name at its container's namespace when they differ (a new container). */
  async function adoptContainerNs(instanceId: string, netns: Set<string>): Promise<void> {
    const pid = attached.get(instanceId)
    if (pid === undefined) return
    const I = names.instanceNs(instanceId)
    const want = await stat(`/proc/${pid}/ns/net`).then((s) => s.ino, () => null)
    if (want === null) {
      attached.delete(instanceId) // the container is gone; its successor attaches again
      return
    }
    if (netns.has(I) && (await stat(netnsPath(I)).then((s) => s.ino, () => null)) === want) return
    if (netns.has(I)) await ip(['netns', 'del', I]) // the previous namespace, and its veth with it
    await ip(['netns', 'attach', I, String(pid)])
    netns.add(I)
    log.info({ instanceId, pid }, 'network: instance namespace is its container’s')
  }

  /**
   * An instance's namespace: eth0 (veth into the bridge) with its IP, MAC, MTU and default route.
   * `link` false (staged): the bridge end stays down and out of the bridge, eth0 has no carrier.
   */
  async function ensureInstance(inst: Attachable, net: TDesiredNetwork, routerLinks: Map<string, IpLink>, netns: Set<string>, m: number, link: boolean): Promise<void> {
    const iface = inst.interfaces[0]!
    const I = names.instanceNs(inst.instanceId)
    const R = names.routerNs(net.vxlanId)
    const V = names.instanceVeth(inst.instanceId)
    if (!netns.has(I)) {
      await ip(['netns', 'add', I])
      netns.add(I)
    }
    let links = new Map((await ipJson<IpLink[]>(['-n', I, 'addr', 'show'])).map((l) => [l.ifname, l]))
    const veth = routerLinks.get(V)
    if (!links.has('eth0') || !veth) {
      // The veth may be going already (its peer's namespace was deleted).
      if (veth) await ip(['-n', R, 'link', 'del', V]).catch(() => {})
      if (links.has('eth0')) await ip(['-n', I, 'link', 'del', 'eth0'])
      await ip(['-n', R, 'link', 'add', V, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', I])
      if (link) await (await linkVeth(R, V, iface.mac, m)).fdb
      else await batch(R, [`link set ${V} mtu ${m}`])
      links = new Map((await ipJson<IpLink[]>(['-n', I, 'addr', 'show'])).map((l) => [l.ifname, l]))
      log.info({ instanceId: inst.instanceId, ip: iface.ip, linked: link }, link ? 'network: instance interface created' : 'network: instance interface staged (unlinked)')
    } else if (link && (veth.master !== 'br0' || veth.mtu !== m || !isUp(veth))) await (await linkVeth(R, V, iface.mac, m)).fdb
    else if (!link && (veth.master || veth.mtu !== m || isUp(veth))) await batch(R, [`link set ${V} nomaster down mtu ${m}`])
    const eth0 = links.get('eth0')!
    const cmds: string[] = []
    if (!isUp(links.get('lo'))) cmds.push('link set lo up')
    if (eth0.address !== iface.mac || eth0.mtu !== m || !isUp(eth0)) cmds.push(`link set eth0 address ${iface.mac} mtu ${m} up`)
    const addrs = eth0.addr_info?.filter((a) => a.family === 'inet') ?? []
    for (const a of addrs) if (a.local !== iface.ip || a.prefixlen !== iface.prefixLength) cmds.push(`addr del ${a.local}/${a.prefixlen} dev eth0`)
    if (!addrs.some((a) => a.local === iface.ip && a.prefixlen === iface.prefixLength)) cmds.push(`addr add ${iface.ip}/${iface.prefixLength} dev eth0`)
    await batch(I, cmds)
    const routes = await ipJson<Array<{ dst: string; gateway?: string }>>(['-n', I, 'route', 'show', 'default'])
    if (!routes.some((r) => r.gateway === iface.gateway)) await batch(I, [`route replace default via ${iface.gateway} dev eth0`])
  }

  /**
   * Puts an instance's veth into the bridge. The static entry sends its MAC there at once: the
   * bridge may have learned it behind the VXLAN (the instance ran on another node until now),
   * and the instance may not send anything before a client's first packet arrives.
   */
  async function linkVeth(R: string, V: string, mac: string, m: number): Promise<{ fdb: Promise<void> }> {
    await batch(R, [`link set ${V} master br0 mtu ${m} up`])
    const fdb = tools.run('bridge', ['-n', R, 'fdb', 'replace', mac, 'dev', V, 'master', 'static']).then(() => {})
    return { fdb }
  }

  /** /etc/netns/<instance ns>/resolv.conf, rewritten only when it differs. */
  async function ensureResolvConf(instanceId: string, gateway: string): Promise<string> {
    const file = path.join(etcNetns, names.instanceNs(instanceId), 'resolv.conf')
    const body = resolvConf(gateway)
    if ((await readFile(file, 'utf8').catch(() => null)) !== body) {
      await mkdir(path.dirname(file), { recursive: true })
      await writeFile(file, body)
    }
    return file
  }

  async function syncForwarding(net: TDesiredNetwork): Promise<void> {
    const R = names.routerNs(net.vxlanId)
    const fdb = (await tools.json<Array<{ mac: string; dst?: string }>>('bridge', ['-n', R, '-j', 'fdb', 'show', 'dev', 'vx0']))
      .filter((e): e is FdbEntry => typeof e.dst === 'string')
      .map((e) => ({ mac: e.mac, dst: e.dst }))
    const f = diffFdb(desiredFdb(net, vtep), fdb)
    const del = f.del.map((e) => `fdb del ${e.mac} dev vx0 dst ${e.dst} self`)
    const add = f.add.map((e) => `fdb ${e.mac === '00:00:00:00:00:00' ? 'append' : 'replace'} ${e.mac} dev vx0 dst ${e.dst} self permanent`)
    if (del.length) await tools.run('bridge', ['-n', R, '-force', '-batch', '-'], del.join('\n') + '\n')
    if (add.length) await tools.run('bridge', ['-n', R, '-batch', '-'], add.join('\n') + '\n')

    const neigh = (await ipJson<Array<{ dst: string; lladdr?: string }>>(['-n', R, 'neigh', 'show', 'dev', 'br0', 'nud', 'permanent']))
      .filter((n): n is { dst: string; lladdr: string } => typeof n.lladdr === 'string')
      .map((n): NeighEntry => ({ ip: n.dst, mac: n.lladdr }))
    const n = diffNeigh(desiredNeigh(net), neigh)
    await batch(R, [...n.del.map((e) => `neigh del ${e.ip} dev br0`), ...n.set.map((e) => `neigh replace ${e.ip} lladdr ${e.mac} dev br0 nud permanent`)])
  }

  /** Applies a table when it differs from what was applied last, or when it is gone. */
  async function syncTable(ns: string | null, family: string, name: string, body: string): Promise<void> {
    const key = ns ?? ''
    const nft = (args: string[], input?: string) => (ns ? tools.run('ip', ['netns', 'exec', ns, 'nft', ...args], input) : tools.run('nft', args, input))
    const present = JSON.parse((await nft(['-j', 'list', 'tables'])) || '{"nftables":[]}') as { nftables: Array<{ table?: { family: string; name: string } }> }
    const exists = present.nftables.some((e) => e.table?.family === family && e.table.name === name)
    if (exists && tables.get(key) === body) return
    await nft(['-f', '-'], replaceTable(family, name, body))
    tables.set(key, body)
  }

  async function dropNodeTable(): Promise<void> {
    const present = JSON.parse((await tools.run('nft', ['-j', 'list', 'tables'])) || '{"nftables":[]}') as { nftables: Array<{ table?: { family: string; name: string } }> }
    if (present.nftables.some((e) => e.table?.family === 'inet' && e.table.name === names.nodeTable)) await tools.run('nft', ['delete', 'table', 'inet', names.nodeTable])
    tables.delete('')
  }

  async function pass(d: TDesired): Promise<void> {
    const netns = new Set((await ipJson<Array<{ name: string }>>(['netns', 'list'])).map((n) => n.name))
    const nodeLinks = new Map((await ipJson<IpLink[]>(['link', 'show'])).map((l) => [l.ifname, l]))
    const networks = new Map(d.networks.map((n) => [n.networkId, n]))
    const wanted = d.instances.filter((i) => i.interfaces.length > 0)
    const wantedIds = new Set(wanted.map((i) => i.instanceId))
    const toStage = (d.staged ?? []).filter((s) => s.interfaces.length > 0 && !wantedIds.has(s.instanceId))
    /** Linked by activate() after this pass's desired state was sent: stays linked. */
    const activatedSince = (id: string) => (activated.get(id) ?? -1) > d.generation
    const nextReady = new Map<string, PreparedNetwork>()
    const nextFailed = new Map<string, string>()
    const nextJoined = new Map<string, LbNamespace>()
    const nextStaged = new Map<string, Staged>()
    const forwards: Forward[] = []

    if (networks.size) {
      const m = await underlayMtu()
      await sysctl(null, { 'net.ipv4.ip_forward': '1' })
      const routers = new Map<number, Map<string, IpLink>>()
      for (const net of networks.values()) {
        try {
          routers.set(net.vxlanId, await ensureNetwork(net, netns, nodeLinks, m))
        } catch (err) {
          log.warn({ err, network: net.networkId }, 'network: cannot set up the network on this node')
        }
      }
      for (const net of networks.values()) {
        const links = routers.get(net.vxlanId)
        if (!net.lbAddress || !links) continue
        try {
          nextJoined.set(net.networkId, await lbJoin.ensure(net, links, netns, m))
        } catch (err) {
          log.warn({ err, network: net.networkId }, 'network: cannot join the network for load balancing')
        }
      }
      for (const inst of wanted) {
        const iface = inst.interfaces[0]!
        const net = networks.get(iface.networkId)
        const links = net && routers.get(net.vxlanId)
        if (!net || !links) {
          nextFailed.set(inst.instanceId, net ? 'its network could not be set up on this node' : 'its network is not in the desired state')
          continue
        }
        try {
          await adoptContainerNs(inst.instanceId, netns)
          await ensureInstance(inst, net, links, netns, m, true)
          const ports = innerPorts(inst.spec.ports)
          const resolv = dns ? await ensureResolvConf(inst.instanceId, net.gateway) : undefined
          nextReady.set(inst.instanceId, { netnsPath: netnsPath(names.instanceNs(inst.instanceId)), ip: iface.ip, innerPorts: ports, ...(resolv && { resolvConf: resolv }) })
          inst.spec.ports.forEach((p, k) => p.hostPort && forwards.push({ vxlanId: net.vxlanId, hostPort: p.hostPort, ip: iface.ip, port: ports[k]! }))
        } catch (err) {
          nextFailed.set(inst.instanceId, `cannot set up its network interface: ${(err as Error).message}`)
          log.warn({ err, instanceId: inst.instanceId }, 'network: cannot set up the instance interface')
        }
      }
      for (const st of toStage) {
        const iface = st.interfaces[0]!
        const net = networks.get(iface.networkId)
        if (!net || !routers.has(net.vxlanId)) continue
        try {
          let netnsOf: string | null = null
          let resolv: string | undefined
          if (st.driver === 'process') {
            await ensureInstance(st, net, routers.get(net.vxlanId)!, netns, m, activatedSince(st.instanceId))
            netnsOf = netnsPath(names.instanceNs(st.instanceId))
            resolv = dns ? await ensureResolvConf(st.instanceId, net.gateway) : undefined
          }
          nextStaged.set(st.instanceId, { vxlanId: net.vxlanId, iface, netns: netnsOf, ...(resolv && { resolvConf: resolv }) })
        } catch (err) {
          log.warn({ err, instanceId: st.instanceId }, 'network: cannot stage the instance interface (it attaches at start)')
        }
      }
      // Once a transit link exists, 169.254.0.1 does too: the responder can listen on it.
      const dnsPort = dns && routers.size ? await dns.listen() : null
      dns?.setTables(new Map([...networks.values()].map((n) => [transitIp(n.vxlanId), nameTable(n.endpoints)])))
      for (const net of networks.values()) {
        if (!routers.has(net.vxlanId)) continue
        const R = names.routerNs(net.vxlanId)
        try {
          await syncForwarding(net)
          await syncTable(R, 'inet', ROUTER_TABLE, renderRouterTable(forwards.filter((f) => f.vxlanId === net.vxlanId), dnsPort ? { gateway: net.gateway, port: dnsPort } : null))
        } catch (err) {
          log.warn({ err, network: net.networkId }, 'network: cannot sync forwarding entries or rules')
        }
      }
      await syncTable(null, 'inet', names.nodeTable, renderNodeTable(names, forwards, dnsPort))
    } else {
      dns?.setTables(new Map())
      await dropNodeTable()
    }

    const etc = await readdir(etcNetns).catch(() => [] as string[])
    for (const id of attached.keys()) if (!wanted.some((i) => i.instanceId === id)) attached.delete(id)
    const keep = new Set([...wantedIds, ...toStage.map((st) => st.instanceId), ...[...activated.keys()].filter(activatedSince)])
    const junk = garbage(
      names,
      {
        routers: new Set([...networks.values()].map((n) => n.vxlanId)),
        instances: keep,
        lbs: new Set([...networks.values()].filter((n) => n.lbAddress).map((n) => n.vxlanId)),
      },
      { netns: [...netns], nodeLinks: [...nodeLinks.keys()], etc },
    )
    for (const dir of junk.etc) await rm(path.join(etcNetns, dir), { recursive: true, force: true })
    for (const ns of junk.netns) {
      await ip(['netns', 'del', ns]).catch((err) => log.warn({ err, netns: ns }, 'network: cannot delete a namespace'))
      tables.delete(ns)
      log.info({ netns: ns }, 'network: namespace no longer needed, deleted')
    }
    for (const l of junk.links) await ip(['link', 'del', l]).catch(() => {})
    ready.clear()
    failed.clear()
    staged.clear()
    for (const [k, v] of nextReady) ready.set(k, v)
    for (const [k, v] of nextFailed) failed.set(k, v)
    const lbChanged = JSON.stringify([...lbJoined]) !== JSON.stringify([...nextJoined])
    lbJoined = nextJoined
    if (lbChanged) opts.onLbChange?.()
    for (const [k, v] of nextStaged) staged.set(k, v)
    for (const [id, g] of activated) if (g <= d.generation) activated.delete(id)
  }

  return {
    /** Takes a new desired state; the pass runs in the background. */
    apply(d: TDesired): void {
      desired = d
      kick()
      for (const w of nextDesired.splice(0)) w()
    },
    /**
     * Resolves true once a pass has prepared the staged instance (or it runs here already),
     * false when the desired state has not staged it within `timeoutMs`.
     */
    async whenStaged(instanceId: string, timeoutMs: number): Promise<boolean> {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        const announced = desired?.staged?.some((st) => st.instanceId === instanceId) || desired?.instances.some((i) => i.instanceId === instanceId)
        if (announced) {
          await until(kick())
          if (staged.has(instanceId) || ready.has(instanceId)) return true
        }
        const left = deadline - Date.now()
        if (left <= 0 || closed) return false
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, left)
          nextDesired.push(() => (clearTimeout(t), resolve()))
        })
      }
    },
    /**
     * The start's fast path: a staged process instance that is now desired here gets its veth
     * linked into the bridge and nothing else (a full pass follows in the background for the
     * rest: forwarding of published ports, DNS). Null when it was not staged: use prepare().
     */
    async activate(inst: TDesiredInstance): Promise<PreparedNetwork | null> {
      const st = staged.get(inst.instanceId)
      const iface = inst.interfaces[0]
      const d = desired
      if (!st?.netns || !iface || !d || iface.ip !== st.iface.ip || iface.mac !== st.iface.mac || !d.instances.some((i) => i.instanceId === inst.instanceId)) return null
      // Recorded first: a pass that looks at the links from now on keeps them linked.
      activated.set(inst.instanceId, d.generation)
      const { fdb } = await linkVeth(names.routerNs(st.vxlanId), names.instanceVeth(inst.instanceId), iface.mac, await underlayMtu())
      // The bridge entry is in place long before the instance listens: the start does not wait for it.
      fdb.catch((err) => log.warn({ err, instanceId: inst.instanceId }, 'network: cannot pin the instance’s MAC to its port (the next pass retries)'))
      kick()
      log.info({ instanceId: inst.instanceId, ip: iface.ip }, 'network: staged interface linked')
      return { netnsPath: st.netns, ip: iface.ip, innerPorts: innerPorts(inst.spec.ports), ...(st.resolvConf && { resolvConf: st.resolvConf }) }
    },
    /** Runs a pass and returns the instance's prepared namespace; throws why when it has none. */
    async prepare(instanceId: string): Promise<PreparedNetwork> {
      await until(kick())
      const p = ready.get(instanceId)
      if (p) return p
      throw new Error(failed.get(instanceId) ?? 'its network interface is not in the desired state')
    },
    /**
     * Makes the namespace of a running container (by its pid) the instance's, with its
     * interface (Docker: it joins no namespace by path). Resolves once eth0 is up in it.
     */
    async attach(instanceId: string, pid: number): Promise<void> {
      attached.set(instanceId, pid)
      await until(kick())
      if (!ready.has(instanceId)) throw new Error(failed.get(instanceId) ?? 'its network interface is not in the desired state')
    },
    /** Resolves after a full pass that started after this call. */
    sync: () => until(kick()),
    /** The load-balancer namespaces per network id, once the passes asked for so far are done. */
    async lbNamespaces(): Promise<ReadonlyMap<string, LbNamespace>> {
      await until(requested)
      return lbJoined
    },
    async close(): Promise<void> {
      clearInterval(timer)
      closed = true
      for (const w of waiters.splice(0)) w.resolve()
      for (const w of nextDesired.splice(0)) w()
      await looping
    },
  }
}
export type Overlay = ReturnType<typeof createOverlay>
