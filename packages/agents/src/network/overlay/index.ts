/**
 * The overlay network driver: per network a router namespace (router.ts: bridge with the
 * distributed gateway, VXLAN segment, uplink to the node), per instance a namespace with a veth
 * into the bridge (instances.ts), the forwarding entries (entries.ts) and nftables tables
 * (tables.ts) that plan.ts decides. Level-triggered: every pass observes what exists (ip -j,
 * bridge -j, nft), creates or fixes what the desired state needs and removes what it no longer
 * needs, among the things it names with its prefix only. A pass runs on every desired state,
 * before an instance starts, and periodically, so a manual `ip link del` or an agent restart
 * converges. Instances a move is bringing here are staged before they start (staging.ts).
 */
import { readdir, rm } from 'node:fs/promises'
import path from 'node:path'
import type { Logger } from 'pino'
import { innerPorts, type TDesired } from '@alveary/core/protocol'
import { nameTable } from '../dns/names'
import type { DnsResponder } from '../dns/responder'
import type { Tools } from '../exec'
import { createIp, type IpLink } from '../links'
import { netnsPath, ROUTER_TABLE, transitIp, type OverlayNames } from '../names'
import { createPassLoop } from '../passes'
import { createEntries } from './entries'
import { createInstanceNetworks, type PreparedNetwork } from './instances'
import { createLbJoin, type LbNamespace } from './lb-join'
import { garbage, renderNodeTable, renderRouterTable, type Forward } from './plan'
import { createRouters } from './router'
import { createStaging, type Staged } from './staging'
import { createTables } from './tables'

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

export function createOverlay(opts: OverlayOptions) {
  const { names, vtep, tools, log, dns } = opts
  const etcNetns = opts.etcNetns ?? '/etc/netns'
  const ip = createIp(tools)
  const routers = createRouters({ names, vtep, tools, ip, log })
  const instances = createInstanceNetworks({ names, tools, ip, log, etcNetns })
  const entries = createEntries({ names, vtep, tools, ip })
  const tables = createTables({ names, tools })
  const lbJoin = createLbJoin({ names, tools })

  /** Instances whose namespace is ready (path) or failed (why), as of the last pass. */
  const ready = new Map<string, PreparedNetwork>()
  const failed = new Map<string, string>()
  /** Networks this node's load balancers joined: their namespace, as of the last pass. */
  let lbJoined = new Map<string, LbNamespace>()

  const passes = createPassLoop(pass, log, 'network')
  const staging = createStaging({ names, log, passes, ready: (id) => ready.has(id), link: instances.link, mtu: routers.mtu })
  const timer = setInterval(() => passes.kick(), opts.resyncMs ?? 10_000)
  timer.unref()

  async function pass(d: TDesired): Promise<void> {
    const netns = new Set((await ip.json<Array<{ name: string }>>(['netns', 'list'])).map((n) => n.name))
    const nodeLinks = await ip.links(['link', 'show'])
    const networks = new Map(d.networks.map((n) => [n.networkId, n]))
    const wanted = d.instances.filter((i) => i.interfaces.length > 0)
    const wantedIds = new Set(wanted.map((i) => i.instanceId))
    const toStage = (d.staged ?? []).filter((s) => s.interfaces.length > 0 && !wantedIds.has(s.instanceId))
    const nextReady = new Map<string, PreparedNetwork>()
    const nextFailed = new Map<string, string>()
    const nextJoined = new Map<string, LbNamespace>()
    const nextStaged = new Map<string, Staged>()
    const forwards: Forward[] = []

    if (networks.size) {
      const m = await routers.mtu()
      await routers.forward()
      const routerLinks = new Map<number, Map<string, IpLink>>()
      for (const net of networks.values()) {
        try {
          routerLinks.set(net.vxlanId, await routers.ensure(net, netns, nodeLinks, m))
        } catch (err) {
          log.warn({ err, network: net.networkId }, 'network: cannot set up the network on this node')
        }
      }
      for (const net of networks.values()) {
        const links = routerLinks.get(net.vxlanId)
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
        const links = net && routerLinks.get(net.vxlanId)
        if (!net || !links) {
          nextFailed.set(inst.instanceId, net ? 'its network could not be set up on this node' : 'its network is not in the desired state')
          continue
        }
        try {
          await instances.adoptContainerNs(inst.instanceId, netns)
          await instances.ensure(inst, net, links, netns, m, true)
          const ports = innerPorts(inst.spec.ports)
          const resolv = dns ? await instances.resolvConf(inst.instanceId, net.gateway) : undefined
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
        const links = net && routerLinks.get(net.vxlanId)
        if (!net || !links) continue
        try {
          let netnsOf: string | null = null
          let resolv: string | undefined
          if (st.driver === 'process') {
            // Linked already when activate() linked it since this desired state was sent.
            await instances.ensure(st, net, links, netns, m, staging.linkedSince(st.instanceId, d.generation))
            netnsOf = netnsPath(names.instanceNs(st.instanceId))
            resolv = dns ? await instances.resolvConf(st.instanceId, net.gateway) : undefined
          }
          nextStaged.set(st.instanceId, { vxlanId: net.vxlanId, iface, netns: netnsOf, ...(resolv && { resolvConf: resolv }) })
        } catch (err) {
          log.warn({ err, instanceId: st.instanceId }, 'network: cannot stage the instance interface (it attaches at start)')
        }
      }
      // Once a transit link exists, 169.254.0.1 does too: the responder can listen on it.
      const dnsPort = dns && routerLinks.size ? await dns.listen() : null
      dns?.setTables(new Map([...networks.values()].map((n) => [transitIp(n.vxlanId), { network: n.networkId, names: nameTable(n.endpoints) }])))
      for (const net of networks.values()) {
        if (!routerLinks.has(net.vxlanId)) continue
        const R = names.routerNs(net.vxlanId)
        try {
          await entries.sync(net)
          await tables.sync(R, 'inet', ROUTER_TABLE, renderRouterTable(forwards.filter((f) => f.vxlanId === net.vxlanId), dnsPort ? { gateway: net.gateway, port: dnsPort } : null))
        } catch (err) {
          log.warn({ err, network: net.networkId }, 'network: cannot sync forwarding entries or rules')
        }
      }
      await tables.sync(null, 'inet', names.nodeTable, renderNodeTable(names, forwards, dnsPort))
    } else {
      dns?.setTables(new Map())
      await tables.dropNode()
    }

    const etc = await readdir(etcNetns).catch(() => [] as string[])
    instances.keepAttached(wantedIds)
    const keep = new Set([...wantedIds, ...toStage.map((st) => st.instanceId), ...staging.activatedSince(d.generation)])
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
      await ip.run(['netns', 'del', ns]).catch((err) => log.warn({ err, netns: ns }, 'network: cannot delete a namespace'))
      tables.forget(ns)
      log.info({ netns: ns }, 'network: namespace no longer needed, deleted')
    }
    for (const l of junk.links) await ip.run(['link', 'del', l]).catch(() => {})
    ready.clear()
    failed.clear()
    for (const [k, v] of nextReady) ready.set(k, v)
    for (const [k, v] of nextFailed) failed.set(k, v)
    const lbChanged = JSON.stringify([...lbJoined]) !== JSON.stringify([...nextJoined])
    lbJoined = nextJoined
    if (lbChanged) opts.onLbChange?.()
    staging.passed(nextStaged, d.generation)
  }

  return {
    /** Takes a new desired state; the pass runs in the background. */
    apply(d: TDesired): void {
      passes.set(d)
      staging.announced()
    },
    whenStaged: staging.whenStaged,
    activate: staging.activate,
    /** Runs a pass and returns the instance's prepared namespace; throws why when it has none. */
    async prepare(instanceId: string): Promise<PreparedNetwork> {
      await passes.until(passes.kick())
      const p = ready.get(instanceId)
      if (p) return p
      throw new Error(failed.get(instanceId) ?? 'its network interface is not in the desired state')
    },
    /**
     * Makes the namespace of a running container (by its pid) the instance's, with its
     * interface (Docker: it joins no namespace by path). Resolves once eth0 is up in it.
     */
    async attach(instanceId: string, pid: number): Promise<void> {
      instances.attach(instanceId, pid)
      await passes.until(passes.kick())
      if (!ready.has(instanceId)) throw new Error(failed.get(instanceId) ?? 'its network interface is not in the desired state')
    },
    /** Resolves after a full pass that started after this call. */
    sync: () => passes.until(passes.kick()),
    /** The load-balancer namespaces per network id, once the passes asked for so far are done. */
    async lbNamespaces(): Promise<ReadonlyMap<string, LbNamespace>> {
      await passes.until(passes.latest())
      return lbJoined
    },
    /**
     * Stops; with `remove` (every instance of the node has stopped), a last pass towards nothing
     * desired first takes away everything the overlay made (of the latest generation: instances
     * activate() linked for it are not kept).
     */
    async close(remove = false): Promise<void> {
      clearInterval(timer)
      if (remove) {
        passes.set({ type: 'desired', generation: passes.current()?.generation ?? 0, instances: [], networks: [], loadBalancers: [] })
        await passes.until(passes.latest())
      }
      const closing = passes.close()
      staging.close()
      await closing
    },
  }
}
export type Overlay = ReturnType<typeof createOverlay>
