import type { PlacementRequest, SchedNode } from './types'

/** Counts a placement on the node (what the planner and the applier do before committing). */
export function assume(n: SchedNode, r: PlacementRequest) {
  n.cpuAllocated += r.cpuMillis
  n.memoryAllocated += r.memoryMb
  n.portsUsed += r.portCount
  n.appCounts.set(r.appId, (n.appCounts.get(r.appId) ?? 0) + 1)
}

/** Undoes `assume`. */
export function unassume(n: SchedNode, r: PlacementRequest) {
  n.cpuAllocated -= r.cpuMillis
  n.memoryAllocated -= r.memoryMb
  n.portsUsed -= r.portCount
  const c = (n.appCounts.get(r.appId) ?? 1) - 1
  if (c > 0) n.appCounts.set(r.appId, c)
  else n.appCounts.delete(r.appId)
}

const byName = (a: SchedNode, b: SchedNode) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)

/**
 * The scheduler's view of the fleet, in name order. Placements are "assumed" here as soon as
 * they are planned, so the next plan sees them; the applier's fresh read of every node it
 * touched replaces the entry (allocations and spec), which also heals any drift.
 */
export class NodeCache {
  private byId = new Map<string, SchedNode>()
  private index = new Map<string, number>()
  private list: SchedNode[] = []

  get nodes(): readonly SchedNode[] {
    return this.list
  }
  get(id: string) {
    return this.byId.get(id)
  }

  replaceAll(nodes: SchedNode[]) {
    this.byId = new Map(nodes.map((n) => [n.id, n]))
    this.reindex([...nodes].sort(byName))
  }

  /** Replaces a node's entry in place (O(1)); a new node is inserted in name order. */
  upsert(node: SchedNode) {
    const i = this.index.get(node.id)
    this.byId.set(node.id, node)
    if (i !== undefined && this.list[i]!.name === node.name) this.list[i] = node
    else this.reindex([...this.list.filter((n) => n.id !== node.id), node].sort(byName))
  }

  remove(id: string) {
    if (!this.byId.delete(id)) return
    this.reindex(this.list.filter((n) => n.id !== id))
  }

  assume(nodeId: string, r: PlacementRequest) {
    const n = this.byId.get(nodeId)
    if (n) assume(n, r)
  }

  forget(nodeId: string, r: PlacementRequest) {
    const n = this.byId.get(nodeId)
    if (n) unassume(n, r)
  }

  private reindex(list: SchedNode[]) {
    this.list = list
    this.index = new Map(list.map((n, i) => [n.id, i]))
  }
}
