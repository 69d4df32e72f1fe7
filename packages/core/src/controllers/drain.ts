import type { Clock } from '../clock'
import { CoreError } from '../errors'
import type { ChangeBus } from '../store/change-bus'
import type { Db } from '../store/db'
import { TERMINAL_STATES, type HotStore } from '../store/hot-store'
import type { Controller } from './registry'
import { relocate } from './relocate'

/** Starts moves of stateful instances (packages/core/src/moves). */
export interface DrainMoves {
  begin(input: { instanceId: string; reason: 'drain'; targetNodeId: null; requestedById: null }): Promise<string>
}

/** A drain does not retry a move that failed until this long after. */
const MOVE_RETRY_MS = 30_000

/**
 * Moves instances off draining nodes, never taking more than an app's maxUnavailable
 * replicas down at once (an instance is unavailable until it runs again elsewhere, or
 * while it is moving). Instances with volumes move with their data (a move); the others
 * are rescheduled. Level-based: each tick looks at what is still on the node.
 */
export function createDrainController(deps: { db: Db; hot: HotStore; bus: ChangeBus; clock: Clock; schedule(ids: string[]): Promise<void>; moves: DrainMoves }) {
  const { db, hot, clock } = deps

  async function tick(): Promise<void> {
    const draining = await db.node.findMany({ where: { draining: true }, select: { id: true, name: true } })
    for (const node of draining) {
      const onNode = await db.instance.findMany({
        where: { nodeId: node.id, desiredState: 'running' },
        select: { id: true, appId: true, app: { select: { maxUnavailable: true, volumes: true } } },
      })
      const stillStopping = await db.instance.count({ where: { nodeId: node.id, desiredState: 'stopped', releasedAt: null } })
      if (!onNode.length) {
        if (stillStopping) continue
        await db.node.update({ where: { id: node.id }, data: { draining: false } })
        await hot.recordEvent({ kind: 'system', type: 'node.drained', subject: `node/${node.name}`, message: `Node ${node.name} drained` })
        deps.bus.publish({ kind: 'fleet', what: 'node', nodeId: node.id })
        continue
      }
      const appIds = [...new Set(onNode.map((i) => i.appId))]
      const all = await db.instance.findMany({ where: { appId: { in: appIds }, desiredState: 'running' }, select: { id: true, appId: true, nodeId: true } })
      const statuses = await hot.statusesOf(all.map((i) => i.id))
      const moves = await db.move.findMany({
        where: { instanceId: { in: all.map((i) => i.id) }, OR: [{ state: { in: ['running', 'compensating'] } }, { state: 'failed', finishedAt: { gt: new Date(clock.now().getTime() - MOVE_RETRY_MS) } }] },
        select: { instanceId: true, state: true },
      })
      const moving = new Set(moves.filter((m) => m.state !== 'failed').map((m) => m.instanceId))
      const failedLately = new Set(moves.filter((m) => m.state === 'failed').map((m) => m.instanceId))
      const reschedule: string[] = []
      const stateful: string[] = []
      for (const appId of appIds) {
        const first = onNode.find((i) => i.appId === appId)!
        const unavailable = all.filter((i) => {
          if (i.appId !== appId) return false
          const s = statuses.get(i.id)
          return moving.has(i.id) || !i.nodeId || !s || s.nodeId !== i.nodeId || s.state !== 'running' || TERMINAL_STATES.has(s.state)
        }).length
        const budget = first.app.maxUnavailable - unavailable
        if (budget <= 0) continue
        const next = onNode.filter((i) => i.appId === appId && !moving.has(i.id) && !failedLately.has(i.id)).slice(0, budget).map((i) => i.id)
        ;((first.app.volumes as unknown[]).length ? stateful : reschedule).push(...next)
      }
      for (const instanceId of stateful) {
        // Refused (already moving, its node does not answer): the next tick looks again.
        await deps.moves.begin({ instanceId, reason: 'drain', targetNodeId: null, requestedById: null }).catch((err) => {
          if (!(err instanceof CoreError)) throw err
        })
      }
      if (reschedule.length) await relocate(deps, node.id, reschedule, `rescheduling: node ${node.name} is draining`)
      if (reschedule.length || stateful.length) deps.bus.publish({ kind: 'fleet', what: 'instances', nodeId: node.id })
    }
  }

  const controller: Controller = {
    name: 'drain',
    handle: tick,
    onChange: (c) => (c.kind === 'drain' ? { priority: 'high' } : null),
    periodic: { everyMs: 1_000, priority: 'high', ids: () => [undefined] },
  }

  return { tick, controller }
}
