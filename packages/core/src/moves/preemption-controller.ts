import type { Clock } from '../clock'
import { relocate } from '../controllers/relocate'
import type { Controller } from '../controllers/registry'
import { CoreError } from '../errors'
import { loadNodes, loadRequestFor, type NodeSource } from '../scheduler/load'
import type { PortRange } from '../scheduler/types'
import type { ChangeBus } from '../store/change-bus'
import type { Db } from '../store/db'
import { TERMINAL_STATES, type HotStore } from '../store/hot-store'
import { planPreemption, type Holder } from './preemption'
import type { MoveService } from './service'

/** How long a preemptor waits for its victims to leave before it may evict again. */
const NOMINATION_MS = 60_000
const PER_TICK = 10

/**
 * Makes room for pending instances of higher priority: evicts lower-priority ones within
 * their apps' disruption budgets (planPreemption). Evicted instances with volumes move
 * elsewhere with their data; the others are rescheduled. The preemptor is then placed by
 * the scheduler as capacity frees.
 */
export function createPreemptionController(deps: { db: Db; hot: HotStore; nodeSource: NodeSource; bus: ChangeBus; clock: Clock; moves: MoveService; ports: PortRange; schedule(ids: string[]): Promise<void> }) {
  const { db, hot, clock } = deps
  /** Preemptor -> when its victims were chosen: it waits for them instead of choosing more. */
  const nominated = new Map<string, number>()

  async function tick(): Promise<void> {
    const now = clock.now().getTime()
    for (const [id, at] of nominated) if (now - at > NOMINATION_MS) nominated.delete(id)
    const pending = await db.instance.findMany({
      where: { nodeId: null, desiredState: 'running', pendingReason: { not: null }, priority: { gt: 0 }, app: { deletedAt: null }, id: { notIn: [...nominated.keys()] } },
      orderBy: [{ priority: 'desc' }, { createdAt: 'asc' }],
      take: PER_TICK,
      select: { id: true, ordinal: true, priority: true, tenantId: true, app: { select: { name: true } } },
    })
    if (!pending.length) return
    const [nodes, running, active] = await Promise.all([
      loadNodes(deps.nodeSource),
      db.instance.findMany({
        where: { desiredState: 'running', app: { deletedAt: null } },
        select: { id: true, appId: true, nodeId: true, priority: true, cpuMillis: true, memoryMb: true, hostPorts: true, paused: true, app: { select: { volumes: true, maxUnavailable: true } } },
      }),
      db.move.findMany({ where: { state: { in: ['running', 'compensating'] } }, select: { instanceId: true } }),
    ])
    const moving = new Set(active.map((m) => m.instanceId))
    const statuses = await hot.statusesOf(running.map((i) => i.id))
    const up = (i: (typeof running)[number]) => {
      const s = statuses.get(i.id)
      return !!i.nodeId && !moving.has(i.id) && !i.paused && !!s && s.nodeId === i.nodeId && s.state === 'running' && !TERMINAL_STATES.has(s.state)
    }
    const budget = new Map<string, number>()
    for (const i of running) budget.set(i.appId, (budget.get(i.appId) ?? i.app.maxUnavailable) - (up(i) ? 0 : 1))
    const holders = new Map<string, Holder[]>()
    for (const i of running.filter(up)) {
      holders.set(i.nodeId!, [
        ...(holders.get(i.nodeId!) ?? []),
        { instanceId: i.id, appId: i.appId, priority: i.priority, cpuMillis: i.cpuMillis, memoryMb: i.memoryMb, ports: i.hostPorts.length, stateful: (i.app.volumes as unknown[]).length > 0 },
      ])
    }

    for (const p of pending) {
      const req = await loadRequestFor(deps.nodeSource.pool, p.id)
      if (!req) continue
      const plan = planPreemption({ req, nodes, holders, budget, ports: deps.ports })
      if (!plan) continue
      nominated.set(p.id, now)
      const node = nodes.find((n) => n.id === plan.nodeId)!
      const who = `${p.app.name}-${p.ordinal}`
      for (const v of plan.victims) {
        budget.set(v.appId, (budget.get(v.appId) ?? 1) - 1)
        holders.set(plan.nodeId, (holders.get(plan.nodeId) ?? []).filter((h) => h.instanceId !== v.instanceId))
        if (v.stateful) {
          await deps.moves.begin({ instanceId: v.instanceId, reason: 'preemption', targetNodeId: null, requestedById: null }).catch((err) => {
            if (!(err instanceof CoreError)) throw err
          })
        }
      }
      const stateless = plan.victims.filter((v) => !v.stateful).map((v) => v.instanceId)
      await relocate({ ...deps }, plan.nodeId, stateless, `preempted on ${node.name} by ${who} (priority ${p.priority})`)
      await db.instance.updateMany({ where: { id: p.id, nodeId: null }, data: { pendingReason: `waiting for ${plan.victims.length} lower-priority instance${plan.victims.length === 1 ? '' : 's'} to leave ${node.name}` } })
      await hot.recordEvent({
        tenantId: p.tenantId,
        kind: 'system',
        type: 'instance.preempting',
        subject: `app/${p.app.name}`,
        message: `${who} (priority ${p.priority}) takes room on ${node.name}: ${plan.victims.filter((v) => v.stateful).length} instance(s) with volumes move away, ${stateless.length} rescheduled`,
      })
      deps.bus.publish({ kind: 'tenant', tenantId: p.tenantId, what: 'instances' })
    }
  }

  const controller: Controller = { name: 'preemption', handle: tick, periodic: { everyMs: 2_000, priority: 'low', ids: () => [undefined] } }
  return { tick, controller }
}
