import type { Clock } from '../clock'
import { Prisma } from '../generated/prisma/client'
import type { Controller } from './registry'
import { planReplicas, type PlanInstance } from '../rollouts/plan'
import { createRolloutTracker } from '../rollouts/tracker'
import { allocateLeases } from '../services/networks'
import { PRIORITY_OF_CLASS } from '../scheduler/types'
import type { ChangeBus } from '../store/change-bus'
import type { Db, Tx } from '../store/db'
import { TERMINAL_STATES, type HotStore } from '../store/hot-store'
import { minReadySecondsOf } from '../schemas/app'

/** What the replica controller needs to know about the load balancers in front of an app. */
export interface DrainPort {
  /** How long leaving instances drain, and the load-balancing nodes that must hear of it. */
  drainFor(appId: string): Promise<{ drainMs: number; nodeIds: string[] }>
  /** True when every node of `generations` ({ nodeId: generation }) applied it, or no longer serves. */
  acked(generations: Record<string, number>): Promise<boolean>
}

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
  drains: DrainPort
}

/** A new instance that restarted this often without becoming ready fails its rollout. */
const CRASH_RESTARTS = 3

/**
 * Turns an app's desired replica count and revision into instances (through the pure
 * planner in rollouts/plan.ts: scale, rolling replacement, drains), releases the capacity
 * of instances that have stopped, removes deleted apps once nothing of them runs, and hands
 * unplaced instances to the scheduler. Level-based: it reads everything each time, so it can
 * run for any app at any moment (a user change, an agent report, a timer, a resync).
 */
export function createReplicaController({ db, hot, bus, clock, stoppedRetentionMs, resyncIntervalMs, schedule, unschedule, drains }: ReplicaControllerDeps) {
  const rollouts = createRolloutTracker({ db, hot, bus, clock })
  /** One wake-up timer per app, for drains that end and deadlines that pass. */
  const wakeups = new Map<string, { atMs: number; cancel(): void }>()
  const wakeAt = (appId: string, atMs: number) => {
    const cur = wakeups.get(appId)
    if (cur && cur.atMs <= atMs) return
    cur?.cancel()
    const cancel = clock.setTimer(() => {
      wakeups.delete(appId)
      bus.publish({ kind: 'app', appId })
    }, Math.max(0, atMs - clock.now().getTime()) + 5)
    wakeups.set(appId, { atMs, cancel })
  }

  async function reconcileApp(appId: string): Promise<void> {
    const app = await db.app.findUnique({
      where: { id: appId },
      select: {
        id: true,
        tenantId: true,
        name: true,
        replicas: true,
        generation: true,
        revision: true,
        deletedAt: true,
        priorityClass: true,
        maxSurge: true,
        maxUnavailable: true,
        progressDeadlineSeconds: true,
        minReadySeconds: true,
        ports: true,
        networkId: true,
      },
    })
    if (!app) return
    // The revision the row names, not "the newest": an update may commit between the two reads,
    // and a revision exists from the same commit that makes it the app's.
    const target = await db.appRevision.findUnique({ where: { appId_revision: { appId, revision: app.revision } }, select: { templateHash: true, spec: true } })
    if (!target) throw new Error(`app ${app.id}: revision ${app.revision} is missing`)
    const spec = target.spec as { cpuMillis: number; memoryMb: number }
    const instances = await db.instance.findMany({
      where: { appId },
      select: {
        id: true,
        ordinal: true,
        nodeId: true,
        desiredState: true,
        generation: true,
        revision: true,
        releasedAt: true,
        drainingSince: true,
        drainGenerations: true,
        createdAt: true,
        appRevision: { select: { templateHash: true } },
      },
    })
    const statuses = await hot.statusesOf(instances.map((i) => i.id))
    const now = clock.now()
    const { drainMs, nodeIds: lbNodeIds } = app.deletedAt ? { drainMs: 0, nodeIds: [] } : await drains.drainFor(appId)
    /** Really stopped on its node (or never placed): its capacity can be released. */
    const stoppedOnNode = (i: (typeof instances)[number]) => {
      if (!i.nodeId) return true
      const s = statuses.get(i.id)
      return !!s && s.nodeId === i.nodeId && TERMINAL_STATES.has(s.state)
    }

    const planned: PlanInstance[] = []
    for (const i of instances) {
      const s = statuses.get(i.id)
      const here = s && s.nodeId === i.nodeId ? s : undefined
      const running = here?.state === 'running'
      const ready = running && here.ready !== false
      planned.push({
        id: i.id,
        ordinal: i.ordinal,
        current: i.appRevision.templateHash === target.templateHash,
        desiredState: i.desiredState,
        drainingSinceMs: i.drainingSince?.getTime() ?? null,
        drainAcked: i.drainGenerations ? await drains.acked(i.drainGenerations as Record<string, number>) : true,
        released: !!i.releasedAt || !i.nodeId,
        ready,
        running,
        startedAtMs: here?.startedAt?.getTime() ?? null,
        createdAtMs: i.createdAt.getTime(),
        crashing: !ready && (here?.state === 'failed' || (here?.restarts ?? 0) >= CRASH_RESTARTS),
      })
    }
    const plan = planReplicas({
      replicas: app.replicas,
      maxSurge: app.maxSurge,
      maxUnavailable: app.maxUnavailable,
      deleted: !!app.deletedAt,
      drainMs,
      progressDeadlineMs: app.progressDeadlineSeconds * 1000,
      minReadyMs: minReadySecondsOf({ minReadySeconds: app.minReadySeconds, ports: app.ports as { readiness?: unknown }[] }) * 1000,
      nowMs: now.getTime(),
      instances: planned,
    })

    const stop = new Set(plan.stop)
    const toRelease: typeof instances = []
    const toDelete = new Set(plan.replace)
    for (const i of instances) {
      const stopping = (i.desiredState === 'stopped' || stop.has(i.id)) && !plan.restart.includes(i.id)
      if (stopping && !i.releasedAt && i.nodeId && stoppedOnNode(i) && !toDelete.has(i.id)) toRelease.push(i)
      const expired = i.releasedAt && now.getTime() - i.releasedAt.getTime() > stoppedRetentionMs
      if (stopping && (!i.nodeId || expired || (app.deletedAt && (i.releasedAt || stoppedOnNode(i))))) toDelete.add(i.id)
    }
    // New instances above the replica count are a surge: the tenant's quota must allow them.
    let create = plan.create
    let quotaBlocked: string | null = null
    const serving = instances.filter((i) => i.desiredState === 'running' && !i.drainingSince && !stop.has(i.id) && !plan.drain.includes(i.id)).length
    const surge = serving + plan.undrain.length + plan.restart.length + create.length - app.replicas
    if (surge > 0 && create.length) {
      quotaBlocked = await rollouts.surgeQuotaProblem(app.tenantId, Math.min(surge, create.length), spec)
      if (quotaBlocked) create = create.slice(0, Math.max(0, create.length - surge))
    }

    const current = new Set(planned.filter((p) => p.current).map((p) => p.id))
    const relabel = instances.filter((i) => current.has(i.id) && i.revision !== app.revision && !toDelete.has(i.id))
    const stale = instances.filter((i) => i.desiredState === 'running' && !stop.has(i.id) && !toDelete.has(i.id) && i.generation !== app.generation)
    const touched = new Set<string>()
    for (const i of instances)
      if (stop.has(i.id) || plan.restart.includes(i.id) || toDelete.has(i.id) || stale.includes(i) || relabel.includes(i)) if (i.nodeId) touched.add(i.nodeId)
    const drainsChanged = plan.drain.length + plan.undrain.length + plan.stop.length > 0
    await db.$transaction(async (tx) => {
      if (stop.size) await tx.instance.updateMany({ where: { id: { in: [...stop] } }, data: { desiredState: 'stopped', drainingSince: null, drainGenerations: Prisma.DbNull } })
      if (plan.restart.length) await tx.instance.updateMany({ where: { id: { in: plan.restart } }, data: { desiredState: 'running', generation: app.generation } })
      if (plan.undrain.length) await tx.instance.updateMany({ where: { id: { in: plan.undrain } }, data: { drainingSince: null, drainGenerations: Prisma.DbNull } })
      if (toRelease.length) await tx.instance.updateMany({ where: { id: { in: toRelease.map((i) => i.id) } }, data: { releasedAt: now } })
      if (stale.length) await tx.instance.updateMany({ where: { id: { in: stale.map((i) => i.id) } }, data: { generation: app.generation } })
      if (relabel.length) await tx.instance.updateMany({ where: { id: { in: relabel.map((i) => i.id) } }, data: { revision: app.revision } })
      if (toDelete.size) await tx.instance.deleteMany({ where: { id: { in: [...toDelete] } } })
      // Membership changes reach the load balancers with a new generation of their nodes'
      // desired state; a drain records it, so the stop waits until every node applied it.
      const lbGenerations = drainsChanged ? await bumpNodes(tx, lbNodeIds) : {}
      if (plan.drain.length) await tx.instance.updateMany({ where: { id: { in: plan.drain } }, data: { drainingSince: now, drainGenerations: lbGenerations } })
      if (create.length) {
        const created = await tx.instance.createManyAndReturn({
          select: { id: true },
          data: create.map((ordinal) => ({
            tenantId: app.tenantId,
            appId: app.id,
            ordinal,
            generation: app.generation,
            revision: app.revision,
            cpuMillis: spec.cpuMillis,
            memoryMb: spec.memoryMb,
            priority: PRIORITY_OF_CLASS[app.priorityClass],
          })),
        })
        // The address is part of the instance's identity: leased now, kept until the row goes.
        if (app.networkId) await allocateLeases(tx, app.networkId, created.map((c) => c.id))
      }
      if (app.deletedAt && instances.every((i) => toDelete.has(i.id))) await tx.app.delete({ where: { id: app.id } })
      if (touched.size) await bumpNodes(tx, [...touched])
    })
    if (plan.wakeAtMs !== null) wakeAt(appId, plan.wakeAtMs)
    if (!app.deletedAt) await rollouts.track(app, plan.progress, quotaBlocked)

    if (toDelete.size) await hot.forgetStatuses([...toDelete])
    if (app.deletedAt && instances.every((i) => toDelete.has(i.id)))
      await hot.recordEvent({ tenantId: app.tenantId, kind: 'system', type: 'app.removed', subject: `app/${app.name}`, message: `All instances of ${app.name} stopped; app removed` })
    unschedule([...stop, ...toDelete])
    // Freed capacity: the scheduler refreshes these nodes and retries parked work.
    for (const nodeId of new Set(toRelease.map((i) => i.nodeId!))) bus.publish({ kind: 'capacity', nodeId })
    for (const nodeId of new Set([...touched, ...(drainsChanged ? lbNodeIds : [])])) bus.publish({ kind: 'node-desired', nodeId })
    bus.publish({ kind: 'tenant', tenantId: app.tenantId, what: 'instances', id: appId })

    if (!app.deletedAt) {
      const unplaced = await db.instance.findMany({ where: { appId, nodeId: null, desiredState: 'running' }, select: { id: true } })
      if (unplaced.length) await schedule(unplaced.map((i) => i.id))
    }
  }

  /** Bumps the nodes' desired generation; returns the new generation of each. */
  async function bumpNodes(tx: Tx, nodeIds: string[]): Promise<Record<string, number>> {
    if (!nodeIds.length) return {}
    const rows = await tx.$queryRaw<{ id: string; desiredGeneration: number }[]>`
      UPDATE "Node" SET "desiredGeneration" = "desiredGeneration" + 1 WHERE id = ANY(${nodeIds}::uuid[]) RETURNING id, "desiredGeneration"`
    return Object.fromEntries(rows.map((r) => [r.id, r.desiredGeneration]))
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
