import type { PlacementRequest, SchedNode } from './types'

/**
 * The scheduler's view of the fleet. Placements are "assumed" here as soon as they are
 * planned, so the next plan sees them; the applier's answer from the database replaces the
 * allocation of every node it touched, which also heals any drift.
 */
export class NodeCache {
  private byId = new Map<string, SchedNode>()
  private list: SchedNode[] = []

  get nodes(): readonly SchedNode[] {
    return this.list
  }
  get(id: string) {
    return this.byId.get(id)
  }

  replaceAll(nodes: SchedNode[]) {
    this.byId = new Map(nodes.map((n) => [n.id, n]))
    this.list = [...nodes].sort((a, b) => (a.name < b.name ? -1 : 1))
  }

  upsert(node: SchedNode) {
    const had = this.byId.has(node.id)
    this.byId.set(node.id, node)
    this.list = had ? this.list.map((n) => (n.id === node.id ? node : n)) : [...this.list, node].sort((a, b) => (a.name < b.name ? -1 : 1))
  }

  remove(id: string) {
    if (!this.byId.delete(id)) return
    this.list = this.list.filter((n) => n.id !== id)
  }

  assume(nodeId: string, r: PlacementRequest) {
    const n = this.byId.get(nodeId)
    if (!n) return
    n.cpuAllocated += r.cpuMillis
    n.memoryAllocated += r.memoryMb
    n.portsUsed += r.portCount
    n.appCounts.set(r.appId, (n.appCounts.get(r.appId) ?? 0) + 1)
  }

  forget(nodeId: string, r: PlacementRequest) {
    const n = this.byId.get(nodeId)
    if (!n) return
    n.cpuAllocated -= r.cpuMillis
    n.memoryAllocated -= r.memoryMb
    n.portsUsed -= r.portCount
    const c = (n.appCounts.get(r.appId) ?? 1) - 1
    if (c > 0) n.appCounts.set(r.appId, c)
    else n.appCounts.delete(r.appId)
  }

  setAllocation(nodeId: string, a: { cpu: number; memory: number; ports: number; apps: Map<string, number> }) {
    const n = this.byId.get(nodeId)
    if (!n) return
    n.cpuAllocated = a.cpu
    n.memoryAllocated = a.memory
    n.portsUsed = a.ports
    n.appCounts = a.apps
  }
}
