import type { Clock } from '../clock'
import type { ChangeBus } from '../store/change-bus'
import type { Db } from '../store/db'
import type { HotStore } from '../store/hot-store'
import type { NodeLeases } from '../store/node-leases'
import type { Controller } from './registry'
import { relocate } from './relocate'

export interface NodeLifecycleConfig {
  /** A node silent this long becomes NotReady. */
  leaseMs: number
  /** After this long NotReady, its instances are rescheduled elsewhere. */
  evictionGraceMs: number
  /** Token bucket: evictions per second across the fleet. */
  evictionsPerSecond: number
  /** Above this fraction of NotReady nodes, evictions stop: it is the control plane's network, not the nodes. */
  maxUnhealthyFraction: number
}

export interface NodeLifecycleDeps {
  db: Db
  hot: HotStore
  leases: NodeLeases
  bus: ChangeBus
  clock: Clock
  config: NodeLifecycleConfig
  schedule(ids: string[]): Promise<void>
  /**
   * Stateful instances are not simply rescheduled: the migration flow moves them with
   * their disk. Returns the ids it has taken care of; the rest are rescheduled.
   */
  onNodeLost?(nodeId: string, instanceIds: string[]): Promise<string[]>
  log: { info(o: object, m?: string): void; warn(o: object, m?: string): void }
}

/** Node leases, NotReady, and rescheduling away from lost nodes. Run by the leader on every tick. */
export function createNodeLifecycle({ db, hot, leases, bus, clock, config, schedule, onNodeLost, log }: NodeLifecycleDeps) {
  let tokens = config.evictionsPerSecond
  let lastRefill = clock.now().getTime()
  let paused = false

  async function tick(): Promise<void> {
    const now = clock.now()
    for (const nodeId of await leases.expire(config.leaseMs)) {
      const n = await db.node.findUnique({ where: { id: nodeId }, select: { name: true } })
      await hot.recordEvent({ kind: 'system', type: 'node.not_ready', subject: `node/${n?.name ?? nodeId}`, message: `Node ${n?.name ?? nodeId} missed its heartbeats for ${config.leaseMs / 1000}s` })
      bus.publish({ kind: 'fleet', what: 'node', nodeId })
      bus.publish({ kind: 'capacity', nodeId })
      log.warn({ nodeId }, 'node not ready')
    }

    const statuses = await hot.nodeStatuses()
    const notReady = statuses.filter((s) => s.state === 'not_ready')
    const overdue = notReady.filter((s) => s.notReadySince && now.getTime() - s.notReadySince.getTime() >= config.evictionGraceMs)
    if (!overdue.length) return

    const fraction = statuses.length ? notReady.length / statuses.length : 0
    if (statuses.length > 1 && fraction > config.maxUnhealthyFraction) {
      if (!paused) {
        paused = true
        log.warn({ notReady: notReady.length, nodes: statuses.length }, 'most nodes are silent: evictions paused')
        await hot.recordEvent({ kind: 'system', type: 'eviction.paused', subject: 'fleet', message: `${notReady.length} of ${statuses.length} nodes are silent; evictions paused (control-plane network problem?)` })
      }
      return
    }
    paused = false

    tokens = Math.min(config.evictionsPerSecond, tokens + ((now.getTime() - lastRefill) / 1000) * config.evictionsPerSecond)
    lastRefill = now.getTime()
    for (const s of overdue) {
      if (tokens < 1) return
      const held = await db.instance.findMany({ where: { nodeId: s.nodeId, releasedAt: null }, select: { id: true }, take: Math.floor(tokens) })
      if (!held.length) continue
      let ids = held.map((h) => h.id)
      const handled = new Set(onNodeLost ? await onNodeLost(s.nodeId, ids) : [])
      ids = ids.filter((id) => !handled.has(id))
      const moved = await relocate({ db, hot, bus, clock, schedule }, s.nodeId, ids, 'rescheduling: its node was lost')
      tokens -= held.length
      if (moved.length) {
        const n = await db.node.findUnique({ where: { id: s.nodeId }, select: { name: true } })
        log.info({ nodeId: s.nodeId, moved: moved.length }, 'rescheduling instances of a lost node')
        await hot.recordEvent({ kind: 'system', type: 'node.evicted', subject: `node/${n?.name}`, message: `${moved.length} instances rescheduled away from lost node ${n?.name}` })
      }
    }
  }

  const controller: Controller = {
    name: 'node-lifecycle',
    handle: tick,
    periodic: { everyMs: Math.max(200, Math.min(1_000, config.leaseMs / 4)), priority: 'critical', ids: () => [undefined] },
  }

  return { tick, controller }
}
