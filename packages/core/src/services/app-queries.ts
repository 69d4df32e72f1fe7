import type { Actor } from '../auth/actor'
import { requireRole } from '../auth/actor'
import { diffSpecs } from '../rollouts/revisions'
import type { Db } from '../store/db'
import type { HotStore } from '../store/hot-store'
import { overSize } from '../volumes/size'
import { appSelect, findApp, instanceSelect, isCrashing, rolloutSelect, toDetailSpec, toInstance, toSummary, type TAppDetail, type TAppSummary, type TRevision, type TRollout } from './app-views'

/** Reading apps: the list, one app with its instances, its revisions and rollouts. */
export function createAppQueries({ db, hot }: { db: Db; hot: HotStore }) {
  return {
    async list(actor: Actor, tenantId: string): Promise<TAppSummary[]> {
      requireRole(actor, tenantId, 'viewer')
      const apps = await db.app.findMany({ where: { tenantId }, orderBy: { name: 'asc' }, select: appSelect })
      const instances = await db.instance.findMany({ where: { tenantId, desiredState: 'running', nodeId: { not: null } }, select: { id: true, appId: true, nodeId: true } })
      const statuses = await hot.statusesOf(instances.map((i) => i.id))
      const running = new Map<string, number>()
      const crashing = new Map<string, number>()
      const add = (m: Map<string, number>, appId: string) => m.set(appId, (m.get(appId) ?? 0) + 1)
      for (const i of instances) {
        const st = statuses.get(i.id)
        if (st?.state === 'running' && st.nodeId === i.nodeId) add(running, i.appId)
        if (st && isCrashing(st)) add(crashing, i.appId)
      }
      return apps.map((a) => toSummary(a, running.get(a.id) ?? 0, crashing.get(a.id) ?? 0))
    },

    async get(actor: Actor, tenantId: string, appId: string): Promise<TAppDetail> {
      requireRole(actor, tenantId, 'viewer')
      const app = await findApp(db, tenantId, appId)
      const rows = await db.instance.findMany({ where: { appId }, orderBy: [{ ordinal: 'asc' }, { createdAt: 'asc' }], select: instanceSelect })
      const statuses = await hot.statusesOf(rows.map((r) => r.id))
      const portNames = (app.ports as { name: string }[]).map((p) => p.name)
      const rollout =
        (await db.rollout.findFirst({ where: { appId, state: 'progressing' }, orderBy: { createdAt: 'desc' }, select: rolloutSelect })) ??
        (await db.rollout.findFirst({ where: { appId }, orderBy: { createdAt: 'desc' }, select: rolloutSelect }))
      const [moves, volumes] = await Promise.all([
        db.move.findMany({ where: { instanceId: { in: rows.map((r) => r.id) }, state: { in: ['running', 'compensating'] } }, select: { id: true, instanceId: true, step: true, state: true } }),
        db.volume.findMany({ where: { appId }, orderBy: { name: 'asc' }, select: { id: true, name: true, ordinal: true, driver: true, sizeMb: true, epoch: true, nodeId: true } }),
      ])
      const usage = await hot.volumeUsage(volumes.map((v) => v.id))
      const usedOf = (v: { id: string; sizeMb: number }) => {
        const usedBytes = usage.has(v.id) ? Number(usage.get(v.id)!.usedBytes) : null
        return { usedBytes, overSize: overSize(usedBytes, v.sizeMb) }
      }
      const nodeNames = new Map((await db.node.findMany({ where: { id: { in: volumes.flatMap((v) => (v.nodeId ? [v.nodeId] : [])) } }, select: { id: true, name: true } })).map((n) => [n.id, n.name]))
      const instances = rows.map((r) => {
        const m = moves.find((x) => x.instanceId === r.id)
        return toInstance(r, portNames, statuses.get(r.id), {
          moving: m ? { moveId: m.id, step: m.step, state: m.state as 'running' | 'compensating' } : null,
          volumes: volumes
            .filter((v) => v.ordinal === r.ordinal)
            .map((v) => ({ id: v.id, name: v.name, driver: v.driver, sizeMb: v.sizeMb, epoch: v.epoch, ...usedOf(v), node: v.nodeId ? (nodeNames.get(v.nodeId) ?? null) : null })),
        })
      })
      return {
        ...toSummary(
          app,
          instances.filter((i) => i.desiredState === 'running' && i.state === 'running').length,
          instances.filter((i) => i.desiredState === 'running' && isCrashing(i)).length,
        ),
        spec: toDetailSpec(app),
        revision: app.revision,
        rollout,
        instances,
      }
    },

    /** Every revision, newest first, with what changed since the one before. */
    async revisions(actor: Actor, tenantId: string, appId: string): Promise<TRevision[]> {
      requireRole(actor, tenantId, 'viewer')
      const app = await findApp(db, tenantId, appId)
      const rows = await db.appRevision.findMany({ where: { appId }, orderBy: { revision: 'asc' }, select: { revision: true, cause: true, createdAt: true, createdById: true, spec: true } })
      const users = new Map(
        (await db.user.findMany({ where: { id: { in: rows.flatMap((r) => (r.createdById ? [r.createdById] : [])) } }, select: { id: true, email: true } })).map((u) => [u.id, u.email]),
      )
      return rows
        .map((r, k) => ({
          revision: r.revision,
          cause: r.cause,
          createdAt: r.createdAt,
          createdBy: r.createdById ? (users.get(r.createdById) ?? null) : null,
          current: r.revision === app.revision,
          spec: r.spec as Record<string, unknown>,
          changes: k === 0 ? [] : diffSpecs(rows[k - 1]!.spec, r.spec),
        }))
        .reverse()
    },

    async rollouts(actor: Actor, tenantId: string, appId: string): Promise<TRollout[]> {
      requireRole(actor, tenantId, 'viewer')
      await findApp(db, tenantId, appId)
      return db.rollout.findMany({ where: { appId }, orderBy: { createdAt: 'desc' }, take: 50, select: rolloutSelect })
    },
  }
}
