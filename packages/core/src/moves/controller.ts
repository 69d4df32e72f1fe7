import type { Clock } from '../clock'
import type { Controller } from '../controllers/registry'
import type { ChangeBus } from '../store/change-bus'
import type { Db } from '../store/db'
import type { HotStore } from '../store/hot-store'
import { advanceMove, type Step } from './saga'
import type { MoveStore } from './store'
import type { MoveRecord } from './types'

const MiB = 1024 * 1024

/**
 * The leader's loop over moves: each key is one move, advanced as far as it can go now.
 * A move waits on agents (commands), on status reports and on time (fencing); it is due
 * again when its commands answer, when its tenant's instances report, and every second.
 */
export function createMoveController(deps: { db: Db; hot: HotStore; bus: ChangeBus; clock: Clock; store: MoveStore; steps: readonly Step<MoveRecord>[] }) {
  const { db, hot, bus, clock, store, steps } = deps
  /** Tenant -> its active moves, so status reports of other tenants wake nothing. */
  let byTenant = new Map<string, string[]>()

  async function finished(moveId: string, ok: boolean) {
    const m = await db.move.findUnique({ where: { id: moveId } })
    if (!m) return
    const [inst, nodes] = await Promise.all([
      db.instance.findUnique({ where: { id: m.instanceId }, select: { ordinal: true, app: { select: { name: true } } } }),
      db.node.findMany({ where: { id: { in: [m.sourceNodeId, ...(m.targetNodeId ? [m.targetNodeId] : [])] } }, select: { id: true, name: true } }),
    ])
    const name = (id: string | null) => nodes.find((n) => n.id === id)?.name ?? 'another node'
    const what = inst ? `${inst.app.name}-${inst.ordinal}` : 'an instance'
    const copied = Number(m.bytesCopied) > 0 ? `, ${(Number(m.bytesCopied) / MiB).toFixed(1)} MiB copied` : ''
    await hot.recordEvent({
      tenantId: m.tenantId,
      kind: 'system',
      type: ok ? 'move.succeeded' : 'move.failed',
      subject: inst ? `app/${inst.app.name}` : `instance/${m.instanceId}`,
      message: ok
        ? `Moved ${what} from ${name(m.sourceNodeId)} to ${name(m.targetNodeId)}: ${m.downtimeMs ?? '?'} ms without service${copied}`
        : `Move of ${what} failed (${m.error ?? 'unknown'}); it runs on ${name(m.sourceNodeId)}`,
      data: { moveId, downtimeMs: m.downtimeMs },
    })
    bus.publish({ kind: 'tenant', tenantId: m.tenantId, what: 'instances' })
    // A drain waiting for this instance looks again.
    bus.publish({ kind: 'drain', nodeId: m.sourceNodeId })
  }

  async function handle(moveId: string | undefined) {
    if (!moveId) return
    const res = await advanceMove(moveId, { store: store.saga, steps, clock })
    if (res === 'succeeded' || res === 'failed') await finished(moveId, res === 'succeeded')
  }

  const controller: Controller = {
    name: 'move',
    handle,
    onChange(c) {
      if (c.kind === 'move') return { id: c.moveId, priority: 'high' }
      // A step may be waiting for a status report of its tenant's instances.
      if (c.kind === 'tenant' && c.what === 'instances') return (byTenant.get(c.tenantId) ?? []).map((id) => ({ id, priority: 'high' as const }))
      return null
    },
    periodic: {
      everyMs: 1_000,
      priority: 'high',
      async ids() {
        const active = await store.activeIds()
        const next = new Map<string, string[]>()
        for (const m of active) next.set(m.tenantId, [...(next.get(m.tenantId) ?? []), m.id])
        byTenant = next
        return active.map((m) => m.id)
      },
    },
  }

  return { controller }
}
