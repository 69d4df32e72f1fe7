import type { Clock } from '../clock'
import type { Controller } from './registry'
import { PRIORITY_OF_CLASS } from '../scheduler/types'
import type { ChangeBus } from '../store/change-bus'
import type { Db } from '../store/db'
import { TERMINAL_STATES, type HotStore } from '../store/hot-store'

export interface ReplicaControllerDeps {
  db: Db
  hot: HotStore
  bus: ChangeBus
  clock: Clock
  /** How long a stopped instance stays visible before it is removed. */
  stoppedRetentionMs: number
  /** How often every app is reconciled even without a change (the level-based safety net). */
  resyncIntervalMs: number
  /** Hands unplaced instances to the scheduler; takes back ones that no longer need a node. */
  schedule(instanceIds: string[]): Promise<void>
  unschedule(instanceIds: string[]): void
}

/**
 * Turns an app's desired replica count into instances, releases the capacity of instances
 * that have stopped, removes deleted apps once nothing of them runs, and hands unplaced
 * instances to the scheduler. Level-based: it reads everything each time, so it can run
 * for any app at any moment (a user change, an agent report, a periodic resync).
 */
export function createReplicaController({ db, hot, bus, clock, stoppedRetentionMs, resyncIntervalMs, schedule, unschedule }: ReplicaControllerDeps) {
  async function reconcileApp(appId: string): Promise<void> {
    const app = await db.app.findUnique({
      where: { id: appId },
      select: { id: true, tenantId: true, name: true, replicas: true, generation: true, deletedAt: true, cpuMillis: true, memoryMb: true, priorityClass: true },
    })
    if (!app) return
    const instances = await db.instance.findMany({
      where: { appId },
      select: { id: true, ordinal: true, nodeId: true, desiredState: true, generation: true, releasedAt: true },
    })
    const statuses = await hot.statusesOf(instances.map((i) => i.id))
    const now = clock.now()
    const touched = new Set<string>()
    const touch = (i: { nodeId: string | null }) => i.nodeId && touched.add(i.nodeId)
    /** Really stopped on its node (or never placed): its capacity can be released. */
    const stoppedOnNode = (i: (typeof instances)[number]) => {
      if (!i.nodeId) return true
      const s = statuses.get(i.id)
      return !!s && s.nodeId === i.nodeId && TERMINAL_STATES.has(s.state)
    }

    const toStop = new Set<string>()
    const toRelease: typeof instances = []
    const toDelete = new Set<string>()
    const toCreate: number[] = []
    const toRestart: string[] = []

    if (app.deletedAt) {
      for (const i of instances) if (i.desiredState === 'running') toStop.add(i.id)
    } else {
      const byOrdinal = new Map<number, (typeof instances)[number]>()
      for (const i of instances) byOrdinal.set(i.ordinal, i)
      for (let o = 0; o < app.replicas; o++) {
        const i = byOrdinal.get(o)
        if (!i) toCreate.push(o)
        else if (i.desiredState === 'stopped') {
          // Still holding its node (stopping): run it again there. Released: start afresh
          // through the scheduler, since its capacity may be gone.
          if (i.releasedAt || !i.nodeId) {
            toDelete.add(i.id)
            toCreate.push(o)
          } else toRestart.push(i.id)
        }
      }
      for (const i of instances) if (i.ordinal >= app.replicas && i.desiredState === 'running') toStop.add(i.id)
    }
    for (const i of instances) {
      const stopping = i.desiredState === 'stopped' || toStop.has(i.id)
      if (stopping && !i.releasedAt && i.nodeId && stoppedOnNode(i) && !toDelete.has(i.id)) toRelease.push(i)
      const expired = i.releasedAt && now.getTime() - i.releasedAt.getTime() > stoppedRetentionMs
      if (stopping && (!i.nodeId || expired || (app.deletedAt && (i.releasedAt || stoppedOnNode(i))))) toDelete.add(i.id)
    }

    const stale = instances.filter((i) => i.desiredState === 'running' && !toStop.has(i.id) && i.generation !== app.generation)
    await db.$transaction(async (tx) => {
      if (toStop.size) await tx.instance.updateMany({ where: { id: { in: [...toStop] } }, data: { desiredState: 'stopped' } })
      if (toRestart.length) await tx.instance.updateMany({ where: { id: { in: toRestart } }, data: { desiredState: 'running', generation: app.generation } })
      if (toRelease.length) await tx.instance.updateMany({ where: { id: { in: toRelease.map((i) => i.id) } }, data: { releasedAt: now } })
      if (stale.length) await tx.instance.updateMany({ where: { id: { in: stale.map((i) => i.id) } }, data: { generation: app.generation } })
      if (toDelete.size) await tx.instance.deleteMany({ where: { id: { in: [...toDelete] } } })
      if (toCreate.length)
        await tx.instance.createMany({
          data: toCreate.map((ordinal) => ({
            tenantId: app.tenantId,
            appId: app.id,
            ordinal,
            generation: app.generation,
            cpuMillis: app.cpuMillis,
            memoryMb: app.memoryMb,
            priority: PRIORITY_OF_CLASS[app.priorityClass],
          })),
        })
      if (app.deletedAt && instances.every((i) => toDelete.has(i.id))) await tx.app.delete({ where: { id: app.id } })
      for (const i of instances) if (toStop.has(i.id) || toRestart.includes(i.id) || toDelete.has(i.id) || stale.includes(i)) touch(i)
      if (touched.size) await tx.node.updateMany({ where: { id: { in: [...touched] } }, data: { desiredGeneration: { increment: 1 } } })
    })

    if (toDelete.size) await hot.forgetStatuses([...toDelete])
    if (app.deletedAt && instances.every((i) => toDelete.has(i.id)))
      await hot.recordEvent({ tenantId: app.tenantId, kind: 'system', type: 'app.removed', subject: `app/${app.name}`, message: `All instances of ${app.name} stopped; app removed` })
    unschedule([...toStop, ...toDelete])
    // Freed capacity: the scheduler refreshes these nodes and retries parked work.
    for (const nodeId of new Set(toRelease.map((i) => i.nodeId!))) bus.publish({ kind: 'capacity', nodeId })
    for (const nodeId of touched) bus.publish({ kind: 'node-desired', nodeId })
    bus.publish({ kind: 'tenant', tenantId: app.tenantId, what: 'instances', id: appId })

    if (!app.deletedAt) {
      const unplaced = await db.instance.findMany({ where: { appId, nodeId: null, desiredState: 'running' }, select: { id: true } })
      if (unplaced.length) await schedule(unplaced.map((i) => i.id))
    }
  }

  async function allAppIds(): Promise<string[]> {
    return (await db.app.findMany({ select: { id: true } })).map((a) => a.id)
  }

  const controller: Controller = {
    name: 'app',
    handle: (appId) => (appId ? reconcileApp(appId) : Promise.resolve()),
    onChange: (c) => (c.kind === 'app' ? { id: c.appId, priority: 'high' } : null),
    periodic: { everyMs: resyncIntervalMs, priority: 'low', ids: allAppIds },
  }

  return { reconcileApp, allAppIds, controller }
}
export type ReplicaController = ReturnType<typeof createReplicaController>
