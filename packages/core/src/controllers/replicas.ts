import type { Clock } from '../clock'
import type { Driver } from '../generated/prisma/client'
import { type NodeSnapshot, type PortRange, placeInstances } from '../placement/spread'
import type { ChangeBus } from '../store/change-bus'
import type { Db, Tx } from '../store/db'
import { recordEvent } from '../services/events'

export interface ReplicaControllerDeps {
  db: Db
  bus: ChangeBus
  clock: Clock
  ports: PortRange
  /** How long a stopped instance stays visible before it is removed. */
  stoppedRetentionMs: number
}

const TERMINAL = new Set(['stopped', 'exited', 'failed'])
// One placement transaction at a time across all BFF processes, so two apps never take
// the same free capacity. (The scheduler issue replaces this with optimistic commits.)
const PLACEMENT_LOCK = 72707370

/** Free capacity, used ports and per-app counts of every node, read inside the placement lock. */
async function snapshot(tx: Tx): Promise<NodeSnapshot[]> {
  const nodes = await tx.node.findMany({
    select: { id: true, name: true, cpuMillis: true, memoryMb: true, schedulable: true, dedicatedTenantId: true, drivers: true, status: { select: { state: true } } },
  })
  const placed = await tx.instance.findMany({
    where: { nodeId: { not: null } },
    select: { nodeId: true, appId: true, desiredState: true, hostPorts: true, status: { select: { state: true } }, app: { select: { cpuMillis: true, memoryMb: true } } },
  })
  const byNode = new Map<string, typeof placed>()
  for (const i of placed) byNode.set(i.nodeId!, [...(byNode.get(i.nodeId!) ?? []), i])
  return nodes.map((n) => {
    const mine = byNode.get(n.id) ?? []
    // Capacity is held until a stopping instance has really stopped.
    const holding = mine.filter((i) => i.desiredState === 'running' || !TERMINAL.has(i.status?.state ?? 'pending'))
    const appInstances = new Map<string, number>()
    for (const i of mine) if (i.desiredState === 'running') appInstances.set(i.appId, (appInstances.get(i.appId) ?? 0) + 1)
    return {
      id: n.id,
      name: n.name,
      ready: n.status?.state === 'ready',
      schedulable: n.schedulable,
      dedicatedTenantId: n.dedicatedTenantId,
      drivers: n.drivers,
      cpuFreeMillis: n.cpuMillis - holding.reduce((s, i) => s + i.app.cpuMillis, 0),
      memoryFreeMb: n.memoryMb - holding.reduce((s, i) => s + i.app.memoryMb, 0),
      usedPorts: new Set(holding.flatMap((i) => Object.values(i.hostPorts as Record<string, number>))),
      appInstances,
    }
  })
}

/**
 * Turns an app's desired replica count into instances and places them on nodes.
 * Level-based: reads everything it needs from the database each time, so it can run
 * for any app at any moment (a user change, a node event, a periodic resync).
 */
export function createReplicaController({ db, bus, clock, ports, stoppedRetentionMs }: ReplicaControllerDeps) {
  async function reconcileApp(appId: string): Promise<void> {
    const touchedNodes = new Set<string>()
    let tenantId: string | null = null
    await db.$transaction(
      async (tx) => {
        await tx.$executeRaw`SELECT pg_advisory_xact_lock(${PLACEMENT_LOCK})`
        const app = await tx.app.findUnique({
          where: { id: appId },
          select: { id: true, tenantId: true, name: true, replicas: true, generation: true, deletedAt: true, driver: true, cpuMillis: true, memoryMb: true, ports: true },
        })
        if (!app) return
        tenantId = app.tenantId
        const instances = await tx.instance.findMany({
          where: { appId },
          select: { id: true, ordinal: true, nodeId: true, desiredState: true, generation: true, status: { select: { state: true, updatedAt: true } } },
        })
        const now = clock.now().getTime()
        const stop = async (ids: string[]) => {
          if (!ids.length) return
          await tx.instance.updateMany({ where: { id: { in: ids } }, data: { desiredState: 'stopped' } })
        }
        const isGone = (i: (typeof instances)[number]) => !i.nodeId || TERMINAL.has(i.status?.state ?? 'pending')

        if (app.deletedAt) {
          const running = instances.filter((i) => i.desiredState === 'running')
          await stop(running.map((i) => i.id))
          running.forEach((i) => i.nodeId && touchedNodes.add(i.nodeId))
          if (instances.every((i) => i.desiredState === 'stopped' && isGone(i))) {
            instances.forEach((i) => i.nodeId && touchedNodes.add(i.nodeId))
            await tx.app.delete({ where: { id: app.id } })
            await recordEvent(tx, { tenantId: app.tenantId, kind: 'system', type: 'app.removed', subject: `app/${app.name}`, message: `All instances of ${app.name} stopped; app removed` })
          }
          return
        }

        // Scale: ordinals [0, replicas) run, the rest stop.
        const byOrdinal = new Map(instances.map((i) => [i.ordinal, i]))
        const toCreate: number[] = []
        for (let o = 0; o < app.replicas; o++) {
          const i = byOrdinal.get(o)
          if (!i) toCreate.push(o)
          else if (i.desiredState === 'stopped') {
            if (isGone(i)) {
              // Finished stopping: replace it with a fresh instance (it may land elsewhere).
              await tx.instance.delete({ where: { id: i.id } })
              toCreate.push(o)
            } else {
              await tx.instance.update({ where: { id: i.id }, data: { desiredState: 'running' } })
            }
            if (i.nodeId) touchedNodes.add(i.nodeId)
          }
        }
        const excess = instances.filter((i) => i.ordinal >= app.replicas && i.desiredState === 'running')
        await stop(excess.map((i) => i.id))
        excess.forEach((i) => i.nodeId && touchedNodes.add(i.nodeId))
        if (toCreate.length)
          await tx.instance.createMany({ data: toCreate.map((ordinal) => ({ tenantId: app.tenantId, appId: app.id, ordinal, generation: app.generation })) })

        // Roll the spec generation forward on placed instances.
        const stale = instances.filter((i) => i.desiredState === 'running' && i.generation !== app.generation && i.ordinal < app.replicas)
        if (stale.length) {
          await tx.instance.updateMany({ where: { id: { in: stale.map((i) => i.id) } }, data: { generation: app.generation } })
          stale.forEach((i) => i.nodeId && touchedNodes.add(i.nodeId))
        }

        // Forget stopped instances once they have been visible for a while.
        const expired = instances.filter(
          (i) => i.desiredState === 'stopped' && i.ordinal >= app.replicas && isGone(i) && now - (i.status?.updatedAt.getTime() ?? 0) > stoppedRetentionMs,
        )
        if (expired.length) {
          await tx.instance.deleteMany({ where: { id: { in: expired.map((i) => i.id) } } })
          expired.forEach((i) => i.nodeId && touchedNodes.add(i.nodeId))
        }

        // Place what is not placed yet.
        const unplaced = await tx.instance.findMany({ where: { appId, nodeId: null, desiredState: 'running' }, orderBy: { ordinal: 'asc' }, select: { id: true } })
        if (unplaced.length) {
          const portNames = (app.ports as { name: string }[]).map((p) => p.name)
          const result = placeInstances(
            await snapshot(tx),
            unplaced.map((i) => ({ instanceId: i.id, tenantId: app.tenantId, appId: app.id, driver: app.driver as Driver, cpuMillis: app.cpuMillis, memoryMb: app.memoryMb, portNames })),
            ports,
          )
          for (const p of result.placed) {
            await tx.instance.update({ where: { id: p.instanceId }, data: { nodeId: p.nodeId, hostPorts: p.hostPorts, pendingReason: null } })
            touchedNodes.add(p.nodeId)
          }
          for (const p of result.pending) await tx.instance.update({ where: { id: p.instanceId }, data: { pendingReason: p.reason } })
        }
        if (touchedNodes.size) await tx.node.updateMany({ where: { id: { in: [...touchedNodes] } }, data: { desiredGeneration: { increment: 1 } } })
      },
      { timeout: 30_000 },
    )
    for (const nodeId of touchedNodes) bus.publish({ topic: `node:${nodeId}`, kind: 'desired', id: nodeId })
    if (tenantId) bus.publish({ topic: `tenant:${tenantId}`, kind: 'instances', id: appId })
  }

  /** Apps that need attention: all of them on resync (cheap at this scale). */
  async function allAppIds(): Promise<string[]> {
    return (await db.app.findMany({ select: { id: true } })).map((a) => a.id)
  }

  /** Apps with unplaced instances, to retry when capacity appears. */
  async function pendingAppIds(): Promise<string[]> {
    const rows = await db.instance.findMany({ where: { nodeId: null, desiredState: 'running' }, distinct: ['appId'], select: { appId: true } })
    return rows.map((r) => r.appId)
  }

  return { reconcileApp, allAppIds, pendingAppIds }
}
export type ReplicaController = ReturnType<typeof createReplicaController>
