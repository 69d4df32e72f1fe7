/** What the scheduler knows about a node: one entry of the node cache. */
export interface SchedNode {
  id: string
  name: string
  ready: boolean
  /** False when cordoned or draining. */
  schedulable: boolean
  dedicatedTenantId: string | null
  drivers: ReadonlySet<string>
  /** Volume drivers the node offers (local, shared). */
  volumeDrivers?: ReadonlySet<string>
  labels: Readonly<Record<string, string>>
  cpuCapacity: number
  memoryCapacity: number
  cpuAllocated: number
  memoryAllocated: number
  /** Host ports held by instances on the node, and the node's own range if it has one. */
  portsUsed: number
  portRange: PortRange | null
  /** appId -> replicas of that app holding capacity on the node. */
  appCounts: Map<string, number>
  /** overlay: can run instances of tenant networks (absent: host networking only). */
  networkMode?: 'host' | 'overlay'
  /** The agent said it cannot sandbox process instances: only trusted tenants' go there. */
  processUnsandboxed?: boolean
}

export type Strategy = 'spread' | 'binpack'
export type SpreadMode = 'none' | 'soft' | 'hard'

/** One instance to place, with everything placement needs from its app and tenant. */
export interface PlacementRequest {
  instanceId: string
  tenantId: string
  appId: string
  driver: string
  cpuMillis: number
  memoryMb: number
  /** Dynamic host ports the instance needs (one per app port). */
  portCount: number
  nodeSelector: Readonly<Record<string, string>>
  spread: SpreadMode
  strategy: Strategy
  priority: number
  /** Volume drivers the instance mounts, and the node holding its local volumes' data (if any). */
  volumes?: { drivers: readonly string[]; pinnedNodeId: string | null }
  /** The app is on a tenant network: only overlay nodes can run it. */
  network?: boolean
  /** An operator trusts the tenant: its process apps may run unsandboxed. */
  trusted?: boolean
}

export interface PortRange {
  min: number
  max: number
}

/** What every filter may read besides the node and the request. */
export interface FilterContext {
  /** The default host-port range, for nodes without their own. */
  ports: PortRange
}

/**
 * A feasibility rule: null (fits) or why the node cannot take the instance. Filters read
 * only a SchedNode and a PlacementRequest, so the planner (over its cache) and the plan
 * applier (over fresh, locked rows) run the very same list.
 */
export interface Filter {
  name: string
  run(node: SchedNode, req: PlacementRequest, ctx: FilterContext): string | null
}

/**
 * A scorer gives a raw score (higher is better); scores are normalised to 0..100 before
 * weights apply: by the scorer's fixed range when it has one (so small differences stay
 * small), else by the min and max over the candidate nodes.
 */
export interface Scorer {
  name: string
  range?: readonly [number, number]
  weight: (req: PlacementRequest) => number
  score: (node: SchedNode, req: PlacementRequest) => number
}

export const PRIORITY_OF_CLASS = { low: 0, normal: 100, high: 1000, critical: 10_000 } as const
