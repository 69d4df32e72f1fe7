import { randomUUID } from 'node:crypto'
import type { AgentCommands } from '../agents/commands'
import type { Controller } from '../controllers/registry'
import type { TVolumeCapability } from '../protocol'
import type { Db } from '../store/db'
import type { HotStore } from '../store/hot-store'

/**
 * Deletes the data of volumes whose app is gone (their row lost its app): on the node that
 * holds a local volume, on any connected node offering shared volumes for a shared one;
 * then the row. A node that does not answer keeps its copy until it returns. Commands in
 * flight are remembered here only: a new leader asks again (discarding is idempotent).
 */
export function createVolumeCollector({ db, hot, agents }: { db: Db; hot: HotStore; agents: AgentCommands }) {
  const inFlight = new Map<string, { id: string; nodeId: string }>()

  async function tick(): Promise<void> {
    const orphans = await db.volume.findMany({ where: { appId: null }, take: 100, select: { id: true, tenantId: true, driver: true, nodeId: true, name: true } })
    if (!orphans.length) return
    const statuses = new Map((await hot.nodeStatuses()).map((s) => [s.nodeId, s]))
    const sharedNodes = (await db.node.findMany({ select: { id: true, capabilities: true } })).filter(
      (n) => statuses.get(n.id)?.connected && (n.capabilities as { volume?: TVolumeCapability }).volume?.drivers.includes('shared'),
    )
    for (const v of orphans) {
      const nodeId = v.driver === 'local' ? v.nodeId : (inFlight.get(v.id)?.nodeId ?? sharedNodes[0]?.id ?? null)
      const nodeGone = v.driver === 'local' && (!v.nodeId || !(await db.node.findUnique({ where: { id: v.nodeId }, select: { id: true } })))
      if (nodeGone || (v.driver === 'local' && !v.nodeId)) {
        await db.volume.delete({ where: { id: v.id } })
        continue
      }
      if (!nodeId || !statuses.get(nodeId)?.connected) continue
      const cmd = inFlight.get(v.id) ?? { id: randomUUID(), nodeId }
      inFlight.set(v.id, cmd)
      const st = await agents.run(cmd.id, nodeId, { kind: 'discard-volumes', volumes: [{ volumeId: v.id, tenantId: v.tenantId, driver: v.driver }] }, { timeoutMs: 60_000, wake: { kind: 'fleet', what: 'node', nodeId } })
      if (st.state === 'pending') continue
      inFlight.delete(v.id)
      if (st.state === 'done') {
        await db.volume.delete({ where: { id: v.id } })
        await hot.forgetVolumeUsage([v.id])
        await hot.recordEvent({ tenantId: v.tenantId, kind: 'system', type: 'volume.deleted', subject: `volume/${v.name}`, message: `Volume ${v.name} (${v.driver}) deleted with its app` })
      }
    }
  }

  const controller: Controller = { name: 'volume-collector', handle: tick, periodic: { everyMs: 5_000, priority: 'low', ids: () => [undefined] } }
  return { tick, controller }
}
