/**
 * What a load-balancing node serves: each load balancer's listeners and routes, and for each
 * rule a backend listing every instance of its target apps with a state. Pure: the caller
 * loads the rows.
 */
import type { TDesiredLb, TLbServer } from '../protocol/lb'
import { innerPorts } from '../protocol/network'
import type { TLbRule } from '../schemas/load-balancer'

export interface LbRow {
  id: string
  name: string
  algorithm: 'roundrobin' | 'leastconn'
  stickySeconds: number | null
  drainSeconds: number
  retryUnanswered: boolean
  listeners: { port: number; protocol: 'http' | 'tcp'; rules: TLbRule[] }[]
}

/** Where a load balancer reaches one port of an instance. */
export interface Endpoint {
  address: string
  port: number
  /** Set when `address` is the instance's IP on this tenant network (else a node address and host port). */
  networkId?: string
}

export interface BackendInstance {
  id: string
  appId: string
  /** Port name → where the load balancer reaches it. */
  endpoints: Record<string, Endpoint>
  /** In service and passing readiness. */
  ready: boolean
  draining: boolean
}

/**
 * An instance's endpoints for one load-balancing node: its IP and inner ports when it is on a
 * tenant network the node joined (`joined`: network ids where the node has an address), else
 * its node's address and host ports. Ports are its own revision's, in order.
 */
export function endpointsOf(
  i: { ports: readonly { name: string; containerPort?: number | null }[]; hostPorts: readonly number[]; nodeAddress: string; lease: { networkId: string; ip: string } | null },
  joined: ReadonlySet<string>,
): Record<string, Endpoint> {
  if (i.lease && joined.has(i.lease.networkId)) {
    const { ip, networkId } = i.lease
    const inner = innerPorts(i.ports)
    return Object.fromEntries(i.ports.map((p, k) => [p.name, { address: ip, port: inner[k]!, networkId }]))
  }
  return Object.fromEntries(i.ports.flatMap((p, k) => (i.hostPorts[k] ? [[p.name, { address: i.nodeAddress, port: i.hostPorts[k]! }]] : [])))
}

export const backendName = (port: number, rule: number) => `l${port}_r${rule}`

export function desiredLoadBalancers(lbs: readonly LbRow[], instancesByApp: ReadonlyMap<string, readonly BackendInstance[]>): TDesiredLb[] {
  return lbs.map((lb) => ({
    id: lb.id,
    name: lb.name,
    algorithm: lb.algorithm,
    stickySeconds: lb.stickySeconds,
    drainSeconds: lb.drainSeconds,
    // Absent unless asked for: the desired state of every other load balancer stays as it was.
    ...(lb.retryUnanswered && { retryUnanswered: true }),
    listeners: lb.listeners.map((l) => ({
      port: l.port,
      protocol: l.protocol,
      routes: l.rules.map((r, k) => ({ host: r.host, pathPrefix: r.pathPrefix, backend: backendName(l.port, k) })),
    })),
    backends: lb.listeners.flatMap((l) =>
      l.rules.map((r, k) => ({
        name: backendName(l.port, k),
        servers: r.targets.flatMap((t) =>
          (instancesByApp.get(t.appId) ?? []).flatMap((i): TLbServer[] => {
            const ep = i.endpoints[t.port]
            if (!ep) return []
            const state = i.draining ? 'drain' : i.ready ? 'ready' : 'down'
            return [{ id: i.id, address: ep.address, port: ep.port, weight: t.weight, state, ...(ep.networkId && { networkId: ep.networkId }) }]
          }),
        ),
      })),
    ),
  }))
}
