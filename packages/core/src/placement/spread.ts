/**
 * Placement for the foundation: spread an app's replicas over ready nodes with free
 * cpu/memory. Pure: (snapshot, requests) -> decisions. The scheduler issue replaces this
 * behind the same signature.
 */
export interface NodeSnapshot {
  id: string
  name: string
  ready: boolean
  schedulable: boolean
  dedicatedTenantId: string | null
  drivers: readonly string[]
  cpuFreeMillis: number
  memoryFreeMb: number
  usedPorts: ReadonlySet<number>
  /** appId -> instances of that app already on the node */
  appInstances: ReadonlyMap<string, number>
}

export interface PlacementRequest {
  instanceId: string
  tenantId: string
  appId: string
  driver: string
  cpuMillis: number
  memoryMb: number
  portNames: readonly string[]
}

export interface PlacementResult {
  placed: { instanceId: string; nodeId: string; hostPorts: Record<string, number> }[]
  pending: { instanceId: string; reason: string }[]
}

export interface PortRange {
  min: number
  max: number
}

type Mutable = {
  node: NodeSnapshot
  cpu: number
  mem: number
  ports: Set<number>
  apps: Map<string, number>
}

function reject(n: Mutable, r: PlacementRequest, ports: PortRange): string | null {
  if (!n.node.ready) return 'not ready'
  if (!n.node.schedulable) return 'cordoned'
  if (n.node.dedicatedTenantId && n.node.dedicatedTenantId !== r.tenantId) return 'dedicated to another tenant'
  if (!n.node.drivers.includes(r.driver)) return `no ${r.driver} driver`
  if (n.cpu < r.cpuMillis) return 'insufficient cpu'
  if (n.mem < r.memoryMb) return 'insufficient memory'
  if (ports.max - ports.min + 1 - n.ports.size < r.portNames.length) return 'no free host ports'
  return null
}

function allocatePorts(used: Set<number>, names: readonly string[], range: PortRange): Record<string, number> {
  const out: Record<string, number> = {}
  let p = range.min
  for (const name of names) {
    while (used.has(p)) p++
    out[name] = p
    used.add(p)
  }
  return out
}

export function placeInstances(nodes: readonly NodeSnapshot[], requests: readonly PlacementRequest[], ports: PortRange): PlacementResult {
  const state: Mutable[] = nodes.map((node) => ({
    node,
    cpu: node.cpuFreeMillis,
    mem: node.memoryFreeMb,
    ports: new Set(node.usedPorts),
    apps: new Map(node.appInstances),
  }))
  const result: PlacementResult = { placed: [], pending: [] }
  for (const r of requests) {
    const reasons = new Map<string, number>()
    let best: Mutable | null = null
    for (const n of state) {
      const why = reject(n, r, ports)
      if (why) {
        reasons.set(why, (reasons.get(why) ?? 0) + 1)
        continue
      }
      // Fewest replicas of this app first (spread), then most free cpu, then name for determinism.
      if (
        !best ||
        (n.apps.get(r.appId) ?? 0) < (best.apps.get(r.appId) ?? 0) ||
        ((n.apps.get(r.appId) ?? 0) === (best.apps.get(r.appId) ?? 0) &&
          (n.cpu / n.node.cpuFreeMillis > best.cpu / best.node.cpuFreeMillis || (n.cpu === best.cpu && n.node.name < best.node.name)))
      )
        best = n
    }
    if (!best) {
      result.pending.push({ instanceId: r.instanceId, reason: explain(nodes.length, reasons) })
      continue
    }
    best.cpu -= r.cpuMillis
    best.mem -= r.memoryMb
    best.apps.set(r.appId, (best.apps.get(r.appId) ?? 0) + 1)
    result.placed.push({ instanceId: r.instanceId, nodeId: best.node.id, hostPorts: allocatePorts(best.ports, r.portNames, ports) })
  }
  return result
}

/** "3 nodes: insufficient memory; 1 node: not ready" */
export function explain(total: number, reasons: ReadonlyMap<string, number>): string {
  if (total === 0) return 'no nodes have joined'
  return [...reasons.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([why, n]) => `${n} node${n === 1 ? '' : 's'}: ${why}`)
    .join('; ')
}
