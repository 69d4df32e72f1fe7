/** What the move steps read and change in the world; implemented over the stores in world.ts. */
import type { TObservedState, TVolumeCapability, TVolumeDriver } from '../protocol'

export type MoveReason = 'manual' | 'drain' | 'node_lost' | 'preemption'

export interface MoveRecord {
  id: string
  tenantId: string
  appId: string
  instanceId: string
  reason: MoveReason
  sourceNodeId: string
  /** Asked for by the operator; else the scheduler picks one when reserving. */
  targetNodeId: string | null
}

export interface MovingVolume {
  id: string
  name: string
  driver: TVolumeDriver
  epoch: number
  /** Where the data lives (local) or was last attached (shared). */
  nodeId: string | null
}

export interface MovingInstance {
  id: string
  tenantId: string
  appId: string
  appName: string
  ordinal: number
  nodeId: string | null
  desiredState: 'running' | 'stopped'
  paused: boolean
  driver: 'process' | 'docker'
  image: string | null
  volumes: MovingVolume[]
  /** It has an address on a tenant network (the target stages its interface). */
  networked: boolean
}

export interface MoveNode {
  id: string
  name: string
  address: string
  /** The socket is open (as far as the hot store knows). */
  connected: boolean
  lastHeartbeatAt: Date | null
  volume: TVolumeCapability | null
}

/** The last status an agent reported for the instance, and when the control plane recorded it. */
export interface Observed {
  nodeId: string
  state: TObservedState
  /** Readiness from health checks; null when the instance has none (ready while running). */
  ready: boolean | null
  message: string | null
  at: Date
}

export interface MoveWorld {
  instance(id: string): Promise<MovingInstance | null>
  node(id: string): Promise<MoveNode | null>
  observed(instanceId: string): Promise<Observed | null>
  /**
   * Holds capacity for the instance on the move's target, or on the node the scheduler
   * picks (never the source). Idempotent per move: a second call answers the same node.
   */
  reserve(move: MoveRecord, inst: MovingInstance): Promise<{ nodeId: string } | { reason: string }>
  unreserve(moveId: string, nodeId: string): Promise<void>
  /** Holds the instance stopped on the node it is assigned to, or lets it run again. */
  setPaused(instanceId: string, paused: boolean): Promise<void>
  /**
   * One transaction: the instance and its volumes' attachments go from `from` to `to`
   * (each volume's epoch + 1), the reservation on `to` becomes the placement and the
   * placement on `from` a reservation, and the instance runs (not paused). A no-op when
   * the instance is already on `to`. Used backwards by the compensation.
   */
  switchPlacement(move: MoveRecord, from: string, to: string): Promise<void>
  /**
   * Tells the load-balancing nodes in front of the instance's app to take its new backend;
   * answers the desired generation each must apply, or null when no load balancer serves the app.
   */
  switchLoadBalancers(instanceId: string): Promise<Record<string, number> | null>
  /** Whether each node applied (at least) its generation; nodes that are down count as done. */
  loadBalancersApplied(generations: Record<string, number>): Promise<{ total: number; applied: number }>
  record(moveId: string, patch: { targetNodeId?: string; lastReadyAt?: Date; firstReadyAt?: Date; copied?: { bytes: number; ms: number } }): Promise<void>
}

export interface MoveConfig {
  /** A node disconnected this long is lost: steps waiting on it fail (a shorter blip is an agent restart). */
  nodeLeaseMs: number
  /** A node stops fenced instances by itself after this long without renewing its lease. */
  selfFenceMs: number
  /** Extra wait beyond selfFenceMs before the control plane trusts that it did. */
  fenceMarginMs: number
}
