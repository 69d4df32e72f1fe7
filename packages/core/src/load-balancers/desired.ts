/**
 * What a load-balancing node serves: each load balancer's listeners and routes, and for each
 * rule a backend listing every instance of its target apps with a state. Pure: the caller
 * loads the rows.
 */
import type { TDesiredLb, TLbServer } from '../protocol/lb'
import type { TLbRule } from '../schemas/load-balancer'

export interface LbRow {
  id: string
  name: string
  algorithm: 'roundrobin' | 'leastconn'
  stickySeconds: number | null
  drainSeconds: number
  listeners: { port: number; protocol: 'http' | 'tcp'; rules: TLbRule[] }[]
}

export interface BackendInstance {
  id: string
  appId: string
  /** Port name → where the load balancer reaches it (node address and host port, or instance IP and port). */
  endpoints: Record<string, { address: string; port: number }>
  /** In service and passing readiness. */
  ready: boolean
  draining: boolean
}

export const backendName = (port: number, rule: number) => `l${port}_r${rule}`

export function desiredLoadBalancers(lbs: readonly LbRow[], instancesByApp: ReadonlyMap<string, readonly BackendInstance[]>): TDesiredLb[] {
  return lbs.map((lb) => ({
    id: lb.id,
    name: lb.name,
    algorithm: lb.algorithm,
    stickySeconds: lb.stickySeconds,
    drainSeconds: lb.drainSeconds,
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
            return [{ id: i.id, address: ep.address, port: ep.port, weight: t.weight, state: i.draining ? 'drain' : i.ready ? 'ready' : 'down' }]
          }),
        ),
      })),
    ),
  }))
}
