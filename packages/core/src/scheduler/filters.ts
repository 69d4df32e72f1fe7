import type { Filter, FilterContext, PlacementRequest, SchedNode } from './types'

const MiB = (n: number) => `${n} MiB`

/**
 * The one definition of "this node can take this instance". The planner runs it over its
 * cache; the plan applier runs it again over fresh, locked rows right before committing.
 * A new rule is one entry here (plus the fields it reads, loaded in load.ts) and both
 * sides use it. Cheap checks first: on a large fleet most rejections are decided before
 * any arithmetic.
 */
export const filters: readonly Filter[] = [
  { name: 'ready', run: (n) => (n.ready ? null : 'node not ready') },
  { name: 'schedulable', run: (n) => (n.schedulable ? null : 'node cordoned or draining') },
  { name: 'tenant', run: (n, r) => (n.dedicatedTenantId && n.dedicatedTenantId !== r.tenantId ? 'dedicated to another tenant' : null) },
  { name: 'volume-data', run: (n, r) => (r.volumes?.pinnedNodeId && r.volumes.pinnedNodeId !== n.id ? 'its local volume lives on another node' : null) },
  { name: 'driver', run: (n, r) => (n.drivers.has(r.driver) ? null : `no ${r.driver} driver`) },
  {
    name: 'sandbox',
    run: (n, r) => (r.driver === 'process' && n.processUnsandboxed && !r.trusted ? 'cannot sandbox process apps (only trusted tenants run here)' : null),
  },
  { name: 'network', run: (n, r) => (r.network && n.networkMode !== 'overlay' ? 'no overlay network (host networking only)' : null) },
  {
    name: 'volumes',
    run: (n, r) => {
      for (const d of r.volumes?.drivers ?? []) if (!n.volumeDrivers?.has(d)) return `no ${d} volumes`
      return null
    },
  },
  {
    name: 'selector',
    run: (n, r) => {
      for (const k in r.nodeSelector) if (n.labels[k] !== r.nodeSelector[k]) return `label ${k}=${r.nodeSelector[k]} missing`
      return null
    },
  },
  { name: 'spread', run: (n, r) => (r.spread === 'hard' && (n.appCounts.get(r.appId) ?? 0) > 0 ? 'already runs a replica of this app' : null) },
  { name: 'cpu', run: (n, r) => (n.cpuCapacity - n.cpuAllocated >= r.cpuMillis ? null : 'insufficient cpu') },
  { name: 'memory', run: (n, r) => (n.memoryCapacity - n.memoryAllocated >= r.memoryMb ? null : 'insufficient memory') },
  { name: 'ports', run: (n, r, { ports }) => (portCapacity(n, ports) - n.portsUsed >= r.portCount ? null : 'no free host ports') },
]

/** Host ports a node offers: its own range, or the default one. */
export function portRange(n: SchedNode, ports: FilterContext['ports']) {
  return n.portRange ?? ports
}
const portCapacity = (n: SchedNode, ports: FilterContext['ports']) => {
  const r = portRange(n, ports)
  return r.max - r.min + 1
}

/** Why the node cannot take the instance (the first filter that says no), or null when it can. */
export function rejectReason(n: SchedNode, r: PlacementRequest, ctx: FilterContext): string | null {
  for (const f of filters) {
    const why = f.run(n, r, ctx)
    if (why !== null) return why
  }
  return null
}

/** Detailed text for the one-node case, e.g. "insufficient memory: 512 MiB free, 1024 MiB asked". */
export function detail(reason: string, n: SchedNode, r: PlacementRequest): string {
  if (reason === 'insufficient cpu') return `${reason}: ${n.cpuCapacity - n.cpuAllocated}m free, ${r.cpuMillis}m asked`
  if (reason === 'insufficient memory') return `${reason}: ${MiB(n.memoryCapacity - n.memoryAllocated)} free, ${MiB(r.memoryMb)} asked`
  return reason
}
