/**
 * Staging for moves: an instance a move is bringing here while its source still serves gets
 * its namespace and interface with the same IP and MAC before it is desired here, but unlinked
 * (instances.ts), so its address is never live on two nodes. Once it is desired here,
 * activate() only links its veth (one command) instead of a full pass on the start's critical
 * path; the passes keep what activate() linked even while they work from an older desired state.
 */
import type { Logger } from 'pino'
import { innerPorts, type TDesired, type TDesiredInstance, type TInstanceInterface } from '@alveary/core/protocol'
import type { OverlayNames } from '../names'
import type { PassLoop } from '../passes'
import type { PreparedNetwork } from './instances'

/** A staged instance whose interface is prepared (unlinked), as of the last pass. */
export interface Staged {
  vxlanId: number
  iface: TInstanceInterface
  /** Process instances: their namespace (containers bring their own, so only their network is prepared). */
  netns: string | null
  resolvConf?: string
}

export function createStaging(o: {
  names: OverlayNames
  log: Logger
  passes: PassLoop<TDesired>
  /** The instance's network was prepared by the last pass (it runs here already). */
  ready(instanceId: string): boolean
  /** Puts an instance's veth into its bridge (instances.ts). */
  link(routerNs: string, veth: string, mac: string, mtu: number): Promise<{ fdb: Promise<void> }>
  mtu(): Promise<number>
}) {
  const { names, log, passes } = o
  let staged = new Map<string, Staged>()
  /**
   * Instances linked by activate(), with the generation of the desired state that made them
   * wanted: a pass still working from an older state (one that staged them) must not unlink them.
   */
  const activated = new Map<string, number>()
  /** Waiters for the next desired state (a staged instance not announced yet). */
  const nextDesired: Array<() => void> = []
  let closed = false

  return {
    /** Linked by activate() after the desired state of `generation` was sent: a pass of that state keeps it linked. */
    linkedSince: (instanceId: string, generation: number) => (activated.get(instanceId) ?? -1) > generation,

    /** The instances activate() linked after the desired state of `generation` was sent. */
    activatedSince: (generation: number) => [...activated].filter(([, g]) => g > generation).map(([id]) => id),

    /** A pass of the desired state of `generation` is done: what it staged; activations it saw are its own now. */
    passed(next: Map<string, Staged>, generation: number): void {
      staged = next
      for (const [id, g] of activated) if (g <= generation) activated.delete(id)
    },

    /** A new desired state was taken: whenStaged() looks at it. */
    announced(): void {
      for (const w of nextDesired.splice(0)) w()
    },

    /**
     * Resolves true once a pass has prepared the staged instance (or it runs here already),
     * false when the desired state has not staged it within `timeoutMs`.
     */
    async whenStaged(instanceId: string, timeoutMs: number): Promise<boolean> {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        const desired = passes.current()
        const announced = desired?.staged?.some((st) => st.instanceId === instanceId) || desired?.instances.some((i) => i.instanceId === instanceId)
        if (announced) {
          await passes.until(passes.kick())
          if (staged.has(instanceId) || o.ready(instanceId)) return true
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
      const d = passes.current()
      if (!st?.netns || !iface || !d || iface.ip !== st.iface.ip || iface.mac !== st.iface.mac || !d.instances.some((i) => i.instanceId === inst.instanceId)) return null
      // Recorded first: a pass that looks at the links from now on keeps them linked.
      activated.set(inst.instanceId, d.generation)
      const { fdb } = await o.link(names.routerNs(st.vxlanId), names.instanceVeth(inst.instanceId), iface.mac, await o.mtu())
      // The bridge entry is in place long before the instance listens: the start does not wait for it.
      fdb.catch((err) => log.warn({ err, instanceId: inst.instanceId }, 'network: cannot pin the instance’s MAC to its port (the next pass retries)'))
      passes.kick()
      log.info({ instanceId: inst.instanceId, ip: iface.ip }, 'network: staged interface linked')
      return { netnsPath: st.netns, ip: iface.ip, innerPorts: innerPorts(inst.spec.ports), ...(st.resolvConf && { resolvConf: st.resolvConf }) }
    },

    /** Stops: whoever waits for a staged instance hears false. */
    close(): void {
      closed = true
      for (const w of nextDesired.splice(0)) w()
    },
  }
}
