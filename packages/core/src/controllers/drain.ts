import type { Clock } from '../clock'
import type { ChangeBus } from '../store/change-bus'
import type { Db } from '../store/db'
import { TERMINAL_STATES, type HotStore } from '../store/hot-store'
import type { Controller } from './registry'
import { relocate } from './relocate'

/**
 * Moves instances off draining nodes, never taking more than an app's maxUnavailable
 * replicas down at once (an instance is unavailable until it runs again elsewhere).
 * Level-based: each tick looks at what is still on the node.
 */
export function createDrainController(deps: { db: Db; hot: HotStore; bus: ChangeBus; clock: Clock; schedule(ids: string[]): Promise<void> }) {
  const { db, hot } = deps

  async function tick(): Promise<void> {
    const draining = await db.node.findMany({ where: { draining: true }, select: { id: true, name: true } })
    for (const node of draining) {
      const onNode = await db.instance.findMany({
        where: { nodeId: node.id, desiredState: 'running' },
        select: { id: true, appId: true, app: { select: { maxUnavailable: true } } },
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
      const move: string[] = []
      for (const appId of appIds) {
        const max = onNode.find((i) => i.appId === appId)!.app.maxUnavailable
        const unavailable = all.filter((i) => {
          if (i.appId !== appId) return false
          const s = statuses.get(i.id)
          return !i.nodeId || !s || s.nodeId !== i.nodeId || s.state !== 'running' || TERMINAL_STATES.has(s.state)
        }).length
        const budget = max - unavailable
        if (budget > 0) move.push(...onNode.filter((i) => i.appId === appId).slice(0, budget).map((i) => i.id))
      }
      if (move.length) {
        await relocate(deps, node.id, move, `rescheduling: node ${node.name} is draining`)
        deps.bus.publish({ kind: 'fleet', what: 'instances', nodeId: node.id })
      }
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
