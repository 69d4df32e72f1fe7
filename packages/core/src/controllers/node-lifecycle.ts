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
  /**
   * A node not heard from since this leader began watching gets this long (at least the
   * lease) to come back: agents need time to reconnect after a control-plane restart.
   */
  startupGraceMs: number
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

/**
 * Node leases, NotReady, and rescheduling away from lost nodes. Run by the leader on every tick.
 *
 * Only silence this controller has watched counts: a new leader, a leader that could not
 * tick for a while (store unreachable, process stalled) or a fleet-wide pause that lifts
 * starts watching afresh ("watching since"), and nodes not heard from since then get the
 * startup grace before they are NotReady, and the eviction grace after that. So a
 * control-plane restart or outage never evicts healthy nodes whose agents simply could not
 * report meanwhile (Kubernetes' node-startup grace plays the same part).
 */
export function createNodeLifecycle({ db, hot, leases, bus, clock, config, schedule, onNodeLost, log }: NodeLifecycleDeps) {
  let tokens = config.evictionsPerSecond
  let lastRefill = clock.now().getTime()
  let paused = false
  const periodMs = Math.max(200, Math.min(1_000, config.leaseMs / 4))
  /** A gap longer than this between successful ticks means we were not watching. */
  const maxGapMs = Math.max(5_000, 5 * periodMs)
  const startupMs = Math.max(config.leaseMs, config.startupGraceMs)
  let watchingSince: number | null = null
  let lastWatched = 0

  const watchAfresh = (now: number, why: string) => {
    watchingSince = now
    log.info({ why, startupGraceMs: startupMs }, 'watching node leases afresh: silence before now does not count')
  }

  async function tick(): Promise<void> {
    const now = clock.now()
    const t = now.getTime()
    if (watchingSince === null) watchAfresh(t, 'started leading')
    else if (t - lastWatched > maxGapMs) watchAfresh(t, `no lease check for ${Math.round((t - lastWatched) / 1000)} s`)
    const since = watchingSince!
    // Within the startup grace, only nodes heard from since we started watching can expire.
    const expired = await leases.expire(config.leaseMs, t - since < startupMs ? new Date(since) : null)
    for (const nodeId of expired) {
      const n = await db.node.findUnique({ where: { id: nodeId }, select: { name: true } })
      await hot.recordEvent({ kind: 'system', type: 'node.not_ready', subject: `node/${n?.name ?? nodeId}`, message: `Node ${n?.name ?? nodeId} missed its heartbeats for ${config.leaseMs / 1000}s` })
      bus.publish({ kind: 'fleet', what: 'node', nodeId })
      bus.publish({ kind: 'capacity', nodeId })
      log.warn({ nodeId }, 'node not ready')
    }

    const statuses = await hot.nodeStatuses()
    lastWatched = t
    const notReady = statuses.filter((s) => s.state === 'not_ready')
    // The grace counts from when we saw the node go NotReady; a node already NotReady when we
    // started watching first gets the startup grace to come back.
    const graceFrom = (s: (typeof statuses)[number]) => {
      const at = s.notReadySince?.getTime() ?? t
      return at >= since ? at : since + startupMs
    }
    const overdue = notReady.filter((s) => t - graceFrom(s) >= config.evictionGraceMs)

    const fraction = statuses.length ? notReady.length / statuses.length : 0
    if (statuses.length > 1 && fraction > config.maxUnhealthyFraction) {
      if (overdue.length && !paused) {
        paused = true
        log.warn({ notReady: notReady.length, nodes: statuses.length }, 'most nodes are silent: evictions paused')
        await hot.recordEvent({ kind: 'system', type: 'eviction.paused', subject: 'fleet', message: `${notReady.length} of ${statuses.length} nodes are silent; evictions paused (control-plane network problem?)` })
      }
      return
    }
    if (paused) {
      // The fleet is coming back: the nodes still silent get their full time again instead
      // of being evicted because the first ones to return lifted the pause.
      paused = false
      watchAfresh(t, 'fleet-wide silence ended')
      await hot.recordEvent({ kind: 'system', type: 'eviction.resumed', subject: 'fleet', message: `${notReady.length} of ${statuses.length} nodes still silent; they get the startup grace again before any eviction` })
      return
    }
    if (!overdue.length) return

    tokens = Math.min(config.evictionsPerSecond, tokens + ((now.getTime() - lastRefill) / 1000) * config.evictionsPerSecond)
    lastRefill = now.getTime()
    for (const s of overdue) {
      if (tokens < 1) return
      // Its agent may have come back since the statuses were read (a hello makes it ready):
      // look once more, right before moving anything.
      const [fresh] = await hot.nodeStatuses([s.nodeId])
      if (fresh?.state !== 'not_ready') continue
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
    periodic: { everyMs: periodMs, priority: 'critical', ids: () => [undefined] },
  }

  return { tick, controller }
}
