/**
 * Preemption, decided purely: which running instances of lower priority to evict, on which
 * node, so that a pending instance of higher priority fits. Only instances whose app still
 * has disruption budget (max-unavailable minus what is unavailable already) may go; the
 * cheapest node wins (fewest victims, then the lowest priorities). Feasibility is the
 * scheduler's own: the node without its victims must pass every filter.
 */
import { planOne } from '../scheduler/plan'
import type { PlacementRequest, PortRange, SchedNode } from '../scheduler/types'

export interface Holder {
  instanceId: string
  appId: string
  priority: number
  cpuMillis: number
  memoryMb: number
  ports: number
  /** It has volumes: it is moved away, not stopped. */
  stateful: boolean
}

export interface PreemptionPlan {
  nodeId: string
  victims: Holder[]
}

/** Without these on it, does the request fit the node (every filter, same as placement)? */
function fitsWithout(node: SchedNode, req: PlacementRequest, gone: readonly Holder[], ports: PortRange): boolean {
  const appCounts = new Map(node.appCounts)
  for (const v of gone) appCounts.set(v.appId, (appCounts.get(v.appId) ?? 1) - 1)
  const freed: SchedNode = {
    ...node,
    cpuAllocated: node.cpuAllocated - gone.reduce((s, v) => s + v.cpuMillis, 0),
    memoryAllocated: node.memoryAllocated - gone.reduce((s, v) => s + v.memoryMb, 0),
    portsUsed: node.portsUsed - gone.reduce((s, v) => s + v.ports, 0),
    appCounts,
  }
  return 'nodeId' in planOne([freed], req, { ports })
}

/**
 * The cheapest way to make room for `req`, or null. Victims are taken lowest priority
 * first (then the largest, so fewer go), and only while their app's budget lasts.
 */
export function planPreemption(o: {
  req: PlacementRequest
  nodes: readonly SchedNode[]
  /** Running instances per node that could be evicted. */
  holders: ReadonlyMap<string, readonly Holder[]>
  /** appId -> how many more of its instances may be unavailable now. */
  budget: ReadonlyMap<string, number>
  ports: PortRange
}): PreemptionPlan | null {
  let best: PreemptionPlan | null = null
  const cost = (p: PreemptionPlan) => [p.victims.length, Math.max(...p.victims.map((v) => v.priority))] as const
  for (const node of o.nodes) {
    // Eviction cannot help a node that fails for another reason than room (not ready, wrong driver…).
    const empty = (o.holders.get(node.id) ?? []).filter((h) => h.priority < o.req.priority)
    if (!empty.length || !fitsWithout(node, o.req, empty, o.ports)) continue
    const candidates = [...empty].sort((a, b) => a.priority - b.priority || b.cpuMillis + b.memoryMb - (a.cpuMillis + a.memoryMb))
    const left = new Map(o.budget)
    const victims: Holder[] = []
    for (const c of candidates) {
      if (fitsWithout(node, o.req, victims, o.ports)) break
      if ((left.get(c.appId) ?? 0) <= 0) continue
      left.set(c.appId, left.get(c.appId)! - 1)
      victims.push(c)
    }
    if (!victims.length || !fitsWithout(node, o.req, victims, o.ports)) continue
    // Drop victims that turned out unnecessary (a later, larger one made the room).
    for (let i = victims.length - 1; i >= 0; i--) {
      const without = victims.filter((_, k) => k !== i)
      if (fitsWithout(node, o.req, without, o.ports)) victims.splice(i, 1)
    }
    const plan = { nodeId: node.id, victims }
    if (!best) best = plan
    else {
      const [a, b] = [cost(plan), cost(best)]
      if (a[0] < b[0] || (a[0] === b[0] && a[1] < b[1])) best = plan
    }
  }
  return best
}
