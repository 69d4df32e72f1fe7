import type { Filter } from './types'

const MiB = (n: number) => `${n} MiB`

// Cheap checks first: most rejections on a large fleet are decided before any arithmetic.
export const filters: readonly { name: string; run: Filter }[] = [
  { name: 'ready', run: (n) => (n.ready ? null : 'node not ready') },
  { name: 'schedulable', run: (n) => (n.schedulable ? null : 'node cordoned or draining') },
  { name: 'tenant', run: (n, r) => (n.dedicatedTenantId && n.dedicatedTenantId !== r.tenantId ? 'dedicated to another tenant' : null) },
  { name: 'volume-data', run: (n, r) => (r.volumes?.pinnedNodeId && r.volumes.pinnedNodeId !== n.id ? 'its local volume lives on another node' : null) },
  { name: 'driver', run: (n, r) => (n.drivers.has(r.driver) ? null : `no ${r.driver} driver`) },
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
  {
    name: 'ports',
    run: (n, r, { ports }) => {
      const range = n.portRange ?? ports
      return range.max - range.min + 1 - n.portsUsed >= r.portCount ? null : 'no free host ports'
    },
  },
]

/** Detailed text for the one-node case, e.g. "insufficient memory: 512 MiB free, 1024 MiB asked". */
export function detail(reason: string, n: { cpuCapacity: number; cpuAllocated: number; memoryCapacity: number; memoryAllocated: number }, r: { cpuMillis: number; memoryMb: number }): string {
  if (reason === 'insufficient cpu') return `${reason}: ${n.cpuCapacity - n.cpuAllocated}m free, ${r.cpuMillis}m asked`
  if (reason === 'insufficient memory') return `${reason}: ${MiB(n.memoryCapacity - n.memoryAllocated)} free, ${MiB(r.memoryMb)} asked`
  return reason
}
