/**
 * Keeps an app's rollout record in step with what the planner sees: counts and the current
 * step for the console, success, and the automatic rollback when new instances fail.
 */
import type { Clock } from '../clock'
import type { ChangeBus } from '../store/change-bus'
import type { Db } from '../store/db'
import type { HotStore } from '../store/hot-store'
import { writeApp } from '../services/app-writes'
import { tenantUsage } from '../services/tenants'
import type { RolloutProgress } from './plan'
import { appendRevision, revisionSpec } from './store'

export function createRolloutTracker({ db, hot, bus, clock }: { db: Db; hot: HotStore; bus: ChangeBus; clock: Clock }) {
  return {
    /** `app.revision` is the one the progress was planned for: a rollout to another revision (an update that raced) is left alone. */
    async track(app: { id: string; tenantId: string; name: string; revision: number }, progress: RolloutProgress, quotaBlocked: string | null): Promise<void> {
      const r = await db.rollout.findFirst({ where: { appId: app.id, state: 'progressing' }, orderBy: { createdAt: 'desc' } })
      if (!r || r.toRevision !== app.revision) return
      const now = clock.now()
      const notify = () => bus.publish({ kind: 'tenant', tenantId: app.tenantId, what: 'app', id: app.id })
      if (progress.done) {
        await db.rollout.update({ where: { id: r.id }, data: { state: 'succeeded', step: 'done', finishedAt: now, oldInstances: 0, newInstances: progress.newInstances, newReady: progress.newReady } })
        await hot.recordEvent({ tenantId: app.tenantId, kind: 'system', type: 'rollout.succeeded', subject: `app/${app.name}`, message: `Revision ${r.toRevision} of ${app.name} rolled out` })
        return notify()
      }
      if (progress.failure) {
        if (r.kind !== 'update') {
          await db.rollout.update({ where: { id: r.id }, data: { state: 'failed', finishedAt: now, message: progress.failure, step: 'stopped: the rollback failed too' } })
          await hot.recordEvent({ tenantId: app.tenantId, kind: 'system', type: 'rollout.failed', subject: `app/${app.name}`, message: `Rollback to revision ${r.toRevision} failed: ${progress.failure}` })
          return notify()
        }
        const rolledBack = await writeApp(db, app.tenantId, app.id, async (tx) => {
          const cur = await tx.app.findUnique({ where: { id: app.id }, select: { id: true, tenantId: true, revision: true, replicas: true, deletedAt: true } })
          const still = await tx.rollout.findUnique({ where: { id: r.id }, select: { state: true } })
          // Another update or rollback got there first.
          if (!cur || cur.deletedAt || cur.revision !== r.toRevision || still?.state !== 'progressing') return null
          const from = await tx.appRevision.findUnique({ where: { appId_revision: { appId: app.id, revision: r.fromRevision } }, select: { spec: true } })
          if (!from) return null
          await tx.rollout.update({ where: { id: r.id }, data: { state: 'rolled_back', finishedAt: now, message: progress.failure, step: `rolled back to revision ${r.fromRevision}` } })
          return appendRevision(tx, cur, revisionSpec(from.spec), { cause: `automatic rollback to revision ${r.fromRevision}`, actorId: null, kind: 'auto_rollback', now })
        })
        if (rolledBack) {
          await hot.recordEvent({
            tenantId: app.tenantId,
            kind: 'system',
            type: 'rollout.rolled_back',
            subject: `app/${app.name}`,
            message: `Revision ${r.toRevision} of ${app.name} failed (${progress.failure}); rolling back to revision ${r.fromRevision}`,
          })
          bus.publish({ kind: 'app', appId: app.id })
        }
        return notify()
      }
      const step = quotaBlocked ? `waiting for quota: ${quotaBlocked}` : progress.step
      if (r.step !== step || r.oldInstances !== progress.oldInstances || r.newInstances !== progress.newInstances || r.newReady !== progress.newReady) {
        await db.rollout.update({ where: { id: r.id }, data: { step, oldInstances: progress.oldInstances, newInstances: progress.newInstances, newReady: progress.newReady } })
        notify()
      }
    },

    /** Why the tenant's quota does not allow `count` more instances above the replica counts; null when it does. */
    async surgeQuotaProblem(tenantId: string, count: number, spec: { cpuMillis: number; memoryMb: number }): Promise<string | null> {
      const t = await db.tenant.findUnique({ where: { id: tenantId }, select: { quotaCpuMillis: true, quotaMemoryMb: true, quotaInstances: true } })
      if (!t) return 'tenant not found'
      const used = await tenantUsage(db, tenantId)
      const [extra] = await db.$queryRaw<{ instances: number; cpu: number; mem: number }[]>`
        SELECT COALESCE(SUM(GREATEST(0, held - replicas)), 0)::int AS instances,
               COALESCE(SUM(GREATEST(0, held - replicas) * "cpuMillis"), 0)::int AS cpu,
               COALESCE(SUM(GREATEST(0, held - replicas) * "memoryMb"), 0)::int AS mem
        FROM (SELECT a.replicas, a."cpuMillis", a."memoryMb", COUNT(i.id) AS held FROM "App" a
              JOIN "Instance" i ON i."appId" = a.id AND i."releasedAt" IS NULL AND (i."desiredState" = 'running' OR i."nodeId" IS NOT NULL)
              WHERE a."tenantId" = ${tenantId}::uuid AND a."deletedAt" IS NULL GROUP BY a.id) s`
      const over: string[] = []
      const instances = used.instances + (extra?.instances ?? 0)
      if (instances + count > t.quotaInstances) over.push(`instances: ${instances} + ${count} asked, quota ${t.quotaInstances}`)
      const cpu = used.cpuMillis + (extra?.cpu ?? 0)
      if (cpu + count * spec.cpuMillis > t.quotaCpuMillis) over.push(`cpu: ${cpu}m + ${count * spec.cpuMillis}m asked, quota ${t.quotaCpuMillis}m`)
      const mem = used.memoryMb + (extra?.mem ?? 0)
      if (mem + count * spec.memoryMb > t.quotaMemoryMb) over.push(`memory: ${mem} MiB + ${count * spec.memoryMb} MiB asked, quota ${t.quotaMemoryMb} MiB`)
      return over.length ? over.join('; ') : null
    },
  }
}
