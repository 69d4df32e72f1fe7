/**
 * Instances on a tenant network: a namespace per instance with eth0, a veth into the network's
 * bridge (veth.ts) carrying the instance's IP and MAC and a default route to the gateway, and
 * its resolv.conf. A staged instance (staging.ts) gets the same, but unlinked: the bridge end
 * stays down and out of the bridge, so eth0 has no carrier. A container Docker started with a
 * namespace of its own is adopted: the instance's namespace name moves onto it.
 */
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises'
import path from 'node:path'
import type { Logger } from 'pino'
import type { TDesiredNetwork, TInstanceInterface } from '@alveary/core/protocol'
import type { Tools } from '../exec'
import { isUp, type Ip, type IpLink } from '../links'
import { netnsPath, type OverlayNames } from '../names'
import { resolvConf } from './plan'
import { bridged, ensureVethNamespace } from './veth'

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

/** What ensure() needs of an instance, desired or staged. */
type Attachable = { instanceId: string; interfaces: TInstanceInterface[] }

export function createInstanceNetworks(o: { names: OverlayNames; tools: Tools; ip: Ip; log: Logger; etcNetns: string }) {
  const { names, tools, ip, log, etcNetns } = o
  /**
   * Instances whose namespace is their container's own: Docker cannot start a container in a
   * namespace given by path, so it starts one with none and the overlay adopts it (instance id →
   * the container's pid), moving the instance's name onto it and building eth0 there.
   */
  const attached = new Map<string, number>()

  /**
   * Puts an instance's veth into the bridge. The static entry sends its MAC there at once: the
   * bridge may have learned it behind the VXLAN (the instance ran on another node until now),
   * and the instance may not send anything before a client's first packet arrives.
   */
  async function link(R: string, V: string, mac: string, m: number): Promise<{ fdb: Promise<void> }> {
    await ip.batch(R, [`link set ${V} master br0 mtu ${m} up`])
    const fdb = tools.run('bridge', ['-n', R, 'fdb', 'replace', mac, 'dev', V, 'master', 'static']).then(() => {})
    return { fdb }
  }

  return {
    link,

    /** The container (by its pid) whose namespace becomes the instance's at the next pass. */
    attach: (instanceId: string, pid: number) => void attached.set(instanceId, pid),

    /** Forgets the containers of instances no longer wanted. */
    keepAttached(wanted: ReadonlySet<string>): void {
      for (const id of attached.keys()) if (!wanted.has(id)) attached.delete(id)
    },

    /** Points the instance's namespace name at its container's namespace when they differ (a new container). */
    async adoptContainerNs(instanceId: string, netns: Set<string>): Promise<void> {
      const pid = attached.get(instanceId)
      if (pid === undefined) return
      const I = names.instanceNs(instanceId)
      const want = await stat(`/proc/${pid}/ns/net`).then((s) => s.ino, () => null)
      if (want === null) {
        attached.delete(instanceId) // the container is gone; its successor attaches again
        return
      }
      if (netns.has(I) && (await stat(netnsPath(I)).then((s) => s.ino, () => null)) === want) return
      if (netns.has(I)) await ip.run(['netns', 'del', I]) // the previous namespace, and its veth with it
      await ip.run(['netns', 'attach', I, String(pid)])
      netns.add(I)
      log.info({ instanceId, pid }, 'network: instance namespace is its container’s')
    },

    /**
     * An instance's namespace: eth0 (veth into the bridge) with its IP, MAC, MTU and default route.
     * `linked` false (staged): the bridge end stays down and out of the bridge, eth0 has no carrier.
     */
    async ensure(inst: Attachable, net: TDesiredNetwork, routerLinks: ReadonlyMap<string, IpLink>, netns: Set<string>, m: number, linked: boolean): Promise<void> {
      const iface = inst.interfaces[0]!
      const I = names.instanceNs(inst.instanceId)
      const R = names.routerNs(net.vxlanId)
      const V = names.instanceVeth(inst.instanceId)
      const created = await ensureVethNamespace(ip, { ns: I, routerNs: R, veth: V, mac: iface.mac, ip: iface.ip, prefixLength: iface.prefixLength, mtu: m }, routerLinks, netns, async (veth) => {
        if (linked) {
          if (!veth || !bridged(veth, m)) await (await link(R, V, iface.mac, m)).fdb
        } else if (!veth) await ip.batch(R, [`link set ${V} mtu ${m}`])
        else if (veth.master || veth.mtu !== m || isUp(veth)) await ip.batch(R, [`link set ${V} nomaster down mtu ${m}`])
      })
      if (created) log.info({ instanceId: inst.instanceId, ip: iface.ip, linked }, linked ? 'network: instance interface created' : 'network: instance interface staged (unlinked)')
      const routes = await ip.json<Array<{ dst: string; gateway?: string }>>(['-n', I, 'route', 'show', 'default'])
      if (!routes.some((r) => r.gateway === iface.gateway)) await ip.batch(I, [`route replace default via ${iface.gateway} dev eth0`])
    },

    /** /etc/netns/<instance ns>/resolv.conf, rewritten only when it differs. */
    async resolvConf(instanceId: string, gateway: string): Promise<string> {
      const file = path.join(etcNetns, names.instanceNs(instanceId), 'resolv.conf')
      const body = resolvConf(gateway)
      if ((await readFile(file, 'utf8').catch(() => null)) !== body) {
        await mkdir(path.dirname(file), { recursive: true })
        await writeFile(file, body)
      }
      return file
    },
  }
}
