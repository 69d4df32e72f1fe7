/**
 * The node's network driver: `overlay` (tenant networks: namespaces, bridges, VXLAN,
 * nftables; see overlay/) or `host` (instances share the node's network, as before tenant
 * networks existed). Either way, on a node that sandboxes process instances, those without a
 * tenant network get a namespace of their own (isolated.ts). Runtime drivers get the prepared
 * namespace through startContext().
 */
import { readFileSync } from 'node:fs'
import type { Logger } from 'pino'
import type { TDesired, TDesiredInstance, TNetworkMode } from '@alveary/core/protocol'
import { SpawnError, type StartContext } from '../runtime/types'
import { createDnsResponder, upstreamsOf, type DnsQueryEvent } from './dns/responder'
import { createTools } from './exec'
import { NODE_TRANSIT_IP, overlayNames } from './names'
import type { LbNamespace } from './overlay/lb-join'
import { createIsolation, isolates } from './isolated'
import { probeIsolation } from './isolated-probe'
import { createOverlay } from './overlay'
import { probeOverlay } from './overlay/probe'

export interface NetworkDriver {
  readonly mode: TNetworkMode
  /** Sandboxed process instances without a tenant network get their own namespace (false: they share the node's). */
  readonly isolated: boolean
  /** Reconciles the node's networks and instance namespaces towards a desired state. */
  apply(desired: TDesired): void
  /** The namespace an instance must start in and its resolv.conf (none: the node's network). */
  startContext(instance: TDesiredInstance): Promise<Pick<StartContext, 'netns' | 'resolvConf' | 'attachNetns' | 'portsReady'>>
  /** Namespaces from which the load balancers reach tenant networks the node joined, by network id (overlay/lb-join.ts). */
  lbNamespaces(): Promise<ReadonlyMap<string, LbNamespace>>
  /** Resolves true once an instance staged here by a move has its network prepared; false: not within `timeoutMs` (it attaches at start). */
  whenStaged(instanceId: string, timeoutMs: number): Promise<boolean>
  /** `stopped`: every instance has been stopped, so what the node's networks made goes too (namespaces, links, nftables tables). */
  close(opts?: { stopped?: boolean }): Promise<void>
}

export interface NetworkOptions {
  mode: 'auto' | 'overlay' | 'host'
  prefix: string
  vtep: string
  log: Logger
  onLbChange?: () => void
  /** Process instances run sandboxed: give those without a tenant network a namespace of their own. */
  isolate?: boolean
  /** Such namespaces kept built ahead of starts (isolated.ts); default ISOLATED_POOL. */
  isolatedPool?: number
  /** Told of every query the tenant networks' DNS responder handles (metrics). */
  observeDns?: (e: DnsQueryEvent) => void
}

/** A start takes a namespace from the pool; a burst beyond it builds its own (as fast as before the pool). */
export const ISOLATED_POOL = 2

export async function createNetworkDriver(opts: NetworkOptions): Promise<NetworkDriver> {
  const base = await baseDriver(opts)
  if (!opts.isolate) return base
  const tools = createTools()
  const probe = await probeIsolation(tools)
  if (!probe.ok) {
    opts.log.warn(`network: sandboxed instances on host networking share the node's network namespace (${probe.reason})`)
    return base
  }
  const isolation = createIsolation({ names: overlayNames(opts.prefix), tools, log: opts.log.child({ network: 'isolated' }), pool: opts.isolatedPool ?? ISOLATED_POOL })
  return {
    mode: base.mode,
    isolated: true,
    lbNamespaces: () => base.lbNamespaces(),
    whenStaged: (instanceId, timeoutMs) => base.whenStaged(instanceId, timeoutMs),
    apply(d) {
      base.apply(d)
      isolation.apply(d)
    },
    async startContext(instance) {
      if (!isolates(instance)) return base.startContext(instance)
      try {
        return await isolation.prepare(instance.instanceId)
      } catch (err) {
        throw new SpawnError(`network not ready: ${(err as Error).message}`)
      }
    },
    async close(o) {
      await isolation.close(o?.stopped)
      await base.close(o)
    },
  }
}

async function baseDriver(opts: NetworkOptions): Promise<NetworkDriver> {
  const { log } = opts
  const names = overlayNames(opts.prefix)
  const tools = createTools()
  if (opts.mode !== 'host') {
    const probe = await probeOverlay(tools, names, opts.vtep)
    if (probe.ok) {
      // Names of other domains go to the node's own resolvers (loopback ones work: the responder runs in the node's namespace).
      const dns = createDnsResponder({ host: NODE_TRANSIT_IP, upstreams: nodeResolvers(), log: log.child({ network: 'dns' }), ...(opts.observeDns && { observe: opts.observeDns }) })
      const overlay = createOverlay({ names, vtep: opts.vtep, tools, dns, log: log.child({ network: 'overlay' }), ...(opts.onLbChange && { onLbChange: opts.onLbChange }) })
      log.info({ vtep: opts.vtep, prefix: opts.prefix }, 'network: overlay (tenant networks over VXLAN)')
      return {
        mode: 'overlay',
        isolated: false,
        apply: (d) => overlay.apply(d),
        async startContext(instance) {
          if (!instance.interfaces.length) return {}
          try {
            // Staged by a move: only the link is missing. Else (or if linking failed) a full pass.
            const fast = await overlay.activate(instance).catch((err) => (log.warn({ err, instanceId: instance.instanceId }, 'network: linking the staged interface failed; running a full pass'), null))
            const p = fast ?? (await overlay.prepare(instance.instanceId))
            return { netns: p.netnsPath, ...(p.resolvConf && { resolvConf: p.resolvConf }), attachNetns: (pid) => overlay.attach(instance.instanceId, pid) }
          } catch (err) {
            throw new SpawnError(`network not ready: ${(err as Error).message}`)
          }
        },
        lbNamespaces: () => overlay.lbNamespaces(),
        whenStaged: (instanceId, timeoutMs) => overlay.whenStaged(instanceId, timeoutMs),
        async close(o) {
          await overlay.close(o?.stopped)
          dns.close()
        },
      }
    }
    if (opts.mode === 'overlay') throw new Error(`--network overlay: ${probe.reason}`)
    log.warn(`network: host mode (${probe.reason}); instances share the node's network, and apps on tenant networks are not placed here`)
  }
  return hostNetwork
}

function nodeResolvers(): string[] {
  try {
    return upstreamsOf(readFileSync('/etc/resolv.conf', 'utf8'))
  } catch {
    return []
  }
}

/** Host networking: instances share the node's network; tenant-network instances cannot start here. */
export const hostNetwork: NetworkDriver = {
  mode: 'host',
  isolated: false,
  apply() {},
  async startContext(instance) {
    if (instance.interfaces.length) throw new SpawnError('this node runs host networking only; the instance needs its tenant network (an overlay node)')
    return {}
  },
  lbNamespaces: async () => new Map(),
  whenStaged: async () => false,
  async close() {},
}
