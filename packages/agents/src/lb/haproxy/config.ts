/**
 * HAProxy configuration for the load balancers a node serves. Pure. Every backend has a
 * fixed number of pre-provisioned server slots, so membership, weights and drain/ready
 * state change through the runtime API without a reload; only structural changes (a
 * listener, a rule, a backend outgrowing its slots, the algorithm or stickiness) change the
 * `structure` and need a reload, which starts from the slots' current state.
 */
import type { TDesiredLb } from '@alveary/core/protocol'

export interface Slot {
  address: string
  port: number
  weight: number
  state: 'ready' | 'drain' | 'maint'
  /**
   * The network namespace the slot connects from (a tenant network the node joined), null:
   * the node's. Fixed for the slot's life: HAProxy opens namespaces when it loads its
   * configuration, so a slot's namespace is structure, while its address is not.
   */
  ns: string | null
}

/** One backend as HAProxy sees it: its slots, in order. */
export interface BackendSlots {
  id: string
  slots: Slot[]
}

export const FREE_SLOT: Slot = { address: '127.0.0.1', port: 1, weight: 1, state: 'maint', ns: null }

/** Slots for `servers` members: room to double before a reload is needed. */
export const slotCount = (servers: number) => Math.max(8, 2 ** Math.ceil(Math.log2(Math.max(1, servers * 2))))

export const backendId = (lbId: string, name: string) => `b_${lbId.replace(/-/g, '')}_${name}`
const frontendId = (port: number) => `f_${port}`
const quote = (s: string) => s.replace(/[^A-Za-z0-9._~:/*-]/g, '')

export interface RenderOptions {
  /** Runtime API socket of the worker. */
  adminSocket: string
  /** Where an otherwise empty configuration listens. */
  idleSocket: string
  /** Key for the dynamic stickiness cookies (per node, stable). */
  cookieKey: string
  maxconn: number
  /**
   * Identity of each namespace slots use (name → device:inode): a namespace re-created under
   * the same name changes the structure, so HAProxy reloads and opens the new one.
   */
  netnsIds?: ReadonlyMap<string, string>
}

/** The configuration without the slots' state: equal structures need no reload. */
export function renderStructure(lbs: readonly TDesiredLb[], slots: ReadonlyMap<string, readonly (string | null)[]>, o: RenderOptions): string {
  return render(lbs, new Map([...slots].map(([id, ns]) => [id, { id, slots: ns.map((n) => ({ ...FREE_SLOT, ns: n })) }])), o)
}

export function render(lbs: readonly TDesiredLb[], backends: ReadonlyMap<string, BackendSlots>, o: RenderOptions): string {
  const out: string[] = [
    '# Written by alveary-agent; changes are overwritten.',
    'global',
    `  maxconn ${o.maxconn}`,
    `  stats socket ${o.adminSocket} mode 600 level admin expose-fd listeners`,
    '  hard-stop-after 60s',
    '  log stderr format short local0 warning',
    ...[...new Set([...backends.values()].flatMap((b) => b.slots.flatMap((s) => (s.ns ? [s.ns] : []))))].sort().map((ns) => `  # netns ${ns} ${o.netnsIds?.get(ns) ?? ''}`),
    '',
    // No "log global" for the proxies: HAProxy prints its alerts and server state changes on
    // stderr (haproxy.log) anyway, and a proxy with a log target costs each request ~7% more CPU
    // than plain HAProxy (bench:lb's ratio).
    'defaults',
    '  timeout connect 5s',
    '  timeout client 60s',
    '  timeout server 60s',
    '  timeout http-request 10s',
    '  timeout http-keep-alive 10s',
    '  timeout tunnel 1h',
    // At a reload the old worker answers the next request on each idle keep-alive connection
    // (with "Connection: close") instead of closing it under a client that may be sending:
    // clients that do not retry (wrk, many libraries) would count that request as failed.
    '  option idle-close-on-response',
    // A server that refused a connection or failed to connect: try again, then another one.
    '  retries 3',
    '  option redispatch 1',
    '',
  ]
  for (const lb of lbs) {
    for (const l of lb.listeners) {
      out.push(`frontend ${frontendId(l.port)}`, `  # load balancer ${quote(lb.name)} (${lb.id})`, `  bind :${l.port}`, `  mode ${l.protocol}`)
      if (l.protocol === 'http') {
        out.push('  option http-keep-alive', '  option forwardfor')
        l.routes.forEach((r, k) => {
          const conds: string[] = []
          if (r.host) {
            const host = quote(r.host.toLowerCase())
            out.push(host.startsWith('*.') ? `  acl r${k}_host req.hdr(host),field(1,:),lower -m end ${host.slice(1)}` : `  acl r${k}_host req.hdr(host),field(1,:),lower -m str ${host}`)
            conds.push(`r${k}_host`)
          }
          if (r.pathPrefix) {
            out.push(`  acl r${k}_path path -m beg ${quote(r.pathPrefix)}`)
            conds.push(`r${k}_path`)
          }
          out.push(`  use_backend ${backendId(lb.id, r.backend)}${conds.length ? ` if ${conds.join(' ')}` : ''}`)
        })
        out.push('  default_backend no_route')
      } else {
        const r = l.routes[0]
        if (r) out.push(`  default_backend ${backendId(lb.id, r.backend)}`)
      }
      out.push('')
    }
    const httpBackends = new Set(lb.listeners.filter((l) => l.protocol === 'http').flatMap((l) => l.routes.map((r) => r.backend)))
    for (const b of lb.backends) {
      const id = backendId(lb.id, b.name)
      const http = httpBackends.has(b.name)
      out.push(`backend ${id}`, `  mode ${http ? 'http' : 'tcp'}`, `  balance ${lb.algorithm}`)
      // Opt-in (retryUnanswered): HAProxy then copies every request's 16 KB buffer before sending it
      // (~3 µs a request on bench:lb's host, about a tenth of its CPU per request). Without it,
      // HAProxy's default: only a request that could not be sent (refused, failed connect) goes again.
      // Idempotent methods only, as the built-in proxy does: a POST the instance may have processed is not sent twice.
      if (http && lb.retryUnanswered) out.push('  retry-on conn-failure empty-response', '  http-request disable-l7-retry unless METH_GET || METH_HEAD || METH_OPTIONS')
      if (http && lb.stickySeconds) out.push(`  cookie ALVEARY_LB insert indirect nocache dynamic maxlife ${lb.stickySeconds}s`, `  dynamic-cookie-key ${o.cookieKey}`)
      const slots = backends.get(id)?.slots ?? []
      slots.forEach((s, k) => {
        // Draining has no config keyword: weight 0 takes no new clients, sticky ones still come.
        const weight = s.state === 'drain' ? 0 : s.weight
        out.push(`  server s${k} ${s.address}:${s.port} weight ${weight}${s.state === 'maint' ? ' disabled' : ''}${s.ns ? ` namespace ${s.ns}` : ''}`)
      })
      out.push('')
    }
  }
  // Requests that match no rule of a listener.
  out.push('backend no_route', '  mode http', '  http-request return status 404 content-type text/plain string "no route for this host and path\\n"', '')
  // HAProxy needs a listener: with no load balancer left, one on a private socket.
  if (!lbs.length) out.push('# nothing to serve', 'frontend idle', `  bind unix@${o.idleSocket}`, '  mode tcp', '')
  return out.join('\n')
}
