import type { Clock } from '../clock'
import type { TVolumeCapability } from '../protocol'
import { CoreError } from '../errors'
import type { Db } from '../store/db'
import type { HotStore } from '../store/hot-store'
import type { MoveService } from './service'

const RETRY_MS = 30_000

/**
 * What happens to the instances of a lost node that must never run twice. Stateless ones
 * are rescheduled by the node lifecycle. An instance with only shared volumes moves: the
 * move waits until the node has certainly fenced itself (its lease lapsed for longer than
 * its watchdogs allow) before the volume is attached elsewhere. An instance with a local
 * volume waits for its node: its data is there. Returns the ids it took care of.
 */
export function createNodeLossHandler({ db, hot, clock, moves }: { db: Db; hot: HotStore; clock: Clock; moves: MoveService }) {
  async function wait(ids: string[], reason: string, node: string) {
    const { count } = await db.instance.updateMany({ where: { id: { in: ids }, OR: [{ pendingReason: null }, { pendingReason: { not: reason } }] }, data: { pendingReason: reason } })
    if (count) await hot.recordEvent({ kind: 'system', type: 'move.waiting', subject: `node/${node}`, message: `${count} instance${count === 1 ? '' : 's'} on lost node ${node}: ${reason}` })
  }

  return async function onNodeLost(nodeId: string, instanceIds: string[]): Promise<string[]> {
    const rows = await db.instance.findMany({
      where: { id: { in: instanceIds }, nodeId, desiredState: 'running' },
      select: { id: true, app: { select: { volumes: true } }, node: { select: { name: true, capabilities: true } } },
    })
    const stateful = rows.filter((r) => (r.app.volumes as unknown[]).length > 0)
    if (!stateful.length) return []
    const node = stateful[0]!.node!
    // Moving, or a move failed lately (no room elsewhere?): not again at once.
    const recent = await db.move.findMany({
      where: { instanceId: { in: stateful.map((r) => r.id) }, OR: [{ state: { in: ['running', 'compensating'] } }, { finishedAt: { gt: new Date(clock.now().getTime() - RETRY_MS) }, state: 'failed' }] },
      select: { instanceId: true },
    })
    const moving = new Set(recent.map((m) => m.instanceId))
    const canFence = (node.capabilities as { volume?: TVolumeCapability }).volume?.selfFence === true
    const local = stateful.filter((r) => (r.app.volumes as { driver: string }[]).some((v) => v.driver === 'local'))
    const shared = stateful.filter((r) => !local.includes(r))
    if (local.length) await wait(local.map((r) => r.id), `waiting for ${node.name} to return: its local volume lives there`, node.name)
    if (shared.length && !canFence) await wait(shared.map((r) => r.id), `waiting for ${node.name} to return: it cannot stop instances by itself, so its shared volume cannot be attached elsewhere safely`, node.name)
    if (canFence) {
      for (const r of shared) {
        if (moving.has(r.id)) continue
        await moves.begin({ instanceId: r.id, reason: 'node_lost', targetNodeId: null, requestedById: null }).catch((err) => {
          if (!(err instanceof CoreError)) throw err
        })
      }
    }
    return stateful.map((r) => r.id)
  }
}
