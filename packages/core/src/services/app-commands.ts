import type { Actor } from '../auth/actor'
import type { Clock } from '../clock'
import { requireRole } from '../auth/actor'
import { auditEvent } from '../auth/audit'
import { CoreError } from '../errors'
import type { Prisma } from '../generated/prisma/client'
import { templateHash } from '../rollouts/revisions'
import { appendRevision, revisionSpec, specColumns } from '../rollouts/store'
import { writeApp } from './app-writes'
import { appVersion, checkPrecondition, type Precondition, type TAppVersion } from './versions'
import type { TCreateAppInput, TUpdateAppInput } from '../schemas/app'
import { ZAppSpec } from '../schemas/app'
import type { ChangeBus } from '../store/change-bus'
import type { Db, Tx } from '../store/db'
import type { HotStore } from '../store/hot-store'
import type { NetworkService } from './networks'
import { tenantUsage } from './tenants'
import { appSelect, findApp, toSummary, type AppRow, type TAppSummary } from './app-views'

/** Locks the tenant row so concurrent admissions see each other's usage. */
async function admit(tx: Tx, tenantId: string, delta: { cpuMillis: number; memoryMb: number; instances: number; apps: number }) {
  await tx.$queryRaw`SELECT id FROM "Tenant" WHERE id = ${tenantId}::uuid FOR UPDATE`
  const t = await tx.tenant.findUnique({ where: { id: tenantId }, select: { quotaCpuMillis: true, quotaMemoryMb: true, quotaInstances: true, quotaApps: true } })
  if (!t) throw new CoreError('NOT_FOUND', 'Tenant not found')
  const used = await tenantUsage(tx, tenantId)
  const over: string[] = []
  if (delta.apps > 0 && used.apps + delta.apps > t.quotaApps) over.push(`apps: ${used.apps} of ${t.quotaApps} used`)
  if (delta.instances > 0 && used.instances + delta.instances > t.quotaInstances)
    over.push(`instances: ${used.instances} + ${delta.instances} asked, quota ${t.quotaInstances}`)
  if (delta.cpuMillis > 0 && used.cpuMillis + delta.cpuMillis > t.quotaCpuMillis)
    over.push(`cpu: ${used.cpuMillis}m + ${delta.cpuMillis}m asked, quota ${t.quotaCpuMillis}m`)
  if (delta.memoryMb > 0 && used.memoryMb + delta.memoryMb > t.quotaMemoryMb)
    over.push(`memory: ${used.memoryMb} MiB + ${delta.memoryMb} MiB asked, quota ${t.quotaMemoryMb} MiB`)
  if (over.length) throw new CoreError('QUOTA_EXCEEDED', `Quota exceeded (${over.join('; ')})`)
}

/** The app to change, inside the write's transaction: one being deleted is not found. */
async function liveApp(tx: Tx, tenantId: string, appId: string): Promise<AppRow> {
  const app = await tx.app.findFirst({ where: { id: appId, tenantId, deletedAt: null }, select: appSelect })
  if (!app) throw new CoreError('NOT_FOUND', 'App not found')
  return app
}

/** What a new spec asks of the quota: every replica's cpu and memory change, nothing else. */
const newSpecDelta = (cur: AppRow, spec: { cpuMillis: number; memoryMb: number }) => ({
  apps: 0,
  instances: 0,
  cpuMillis: cur.replicas * (spec.cpuMillis - cur.cpuMillis),
  memoryMb: cur.replicas * (spec.memoryMb - cur.memoryMb),
})

export type AppCommandDeps = { db: Db; hot: HotStore; bus: ChangeBus; clock: Clock; networks: Pick<NetworkService, 'resolveForApp' | 'admit'> }

/** Changing apps: deploy, scale, a new revision, a rollback, delete. Each is audited and announced on the bus. */
export function createAppCommands({ db, hot, bus, clock, networks }: AppCommandDeps) {
  const changed = (tenantId: string, appId: string) => {
    bus.publish({ kind: 'tenant', tenantId, what: 'app', id: appId })
    bus.publish({ kind: 'app', appId })
  }

  return {
    async create(actor: Actor, tenantId: string, input: TCreateAppInput): Promise<TAppSummary> {
      requireRole(actor, tenantId, 'developer')
      const spec = ZAppSpec.parse(input.spec)
      const app = await db.$transaction(async (tx) => {
        await admit(tx, tenantId, {
          apps: 1,
          instances: input.replicas,
          cpuMillis: input.replicas * spec.cpuMillis,
          memoryMb: input.replicas * spec.memoryMb,
        })
        if (await tx.app.findUnique({ where: { tenantId_name: { tenantId, name: input.name } }, select: { id: true } }))
          throw new CoreError('CONFLICT', `An app named "${input.name}" already exists`)
        const networkId = await networks.resolveForApp(tx, tenantId, input.network)
        if (networkId) await networks.admit(tx, networkId, input.replicas)
        const app = await tx.app.create({
          data: {
            tenantId,
            networkId,
            name: input.name,
            replicas: input.replicas,
            ...specColumns(spec),
            revisions: { create: { revision: 1, spec: spec as Prisma.InputJsonValue, templateHash: templateHash(spec), cause: 'created', createdById: actor.userId } },
            volumes: spec.volumes,
            stopAfterDisconnect: spec.stopAfterDisconnect,
          },
          select: appSelect,
        })
        return app
      })
      await hot.recordEvent(auditEvent(actor, { tenantId, type: 'app.created', subject: `app/${app.name}`, message: `App ${app.name} deployed with ${app.replicas} replica${app.replicas === 1 ? '' : 's'}` }))
      changed(tenantId, app.id)
      return toSummary(app, 0, 0)
    },

    /** `precondition`: checked against the app's version with the app locked (a conditional write). */
    async scale(actor: Actor, tenantId: string, appId: string, replicas: number, opts: { precondition?: Precondition<TAppVersion> } = {}): Promise<TAppSummary> {
      requireRole(actor, tenantId, 'developer')
      const app = await writeApp(db, tenantId, appId, async (tx) => {
        const cur = await liveApp(tx, tenantId, appId)
        checkPrecondition(opts.precondition, appVersion({ ...cur, deleting: false }))
        const delta = replicas - cur.replicas
        await admit(tx, tenantId, { apps: 0, instances: delta, cpuMillis: delta * cur.cpuMillis, memoryMb: delta * cur.memoryMb })
        if (cur.network) await networks.admit(tx, cur.network.id, delta)
        const app = await tx.app.update({ where: { id: appId }, data: { replicas, generation: { increment: 1 } }, select: appSelect })
        return { app, from: cur.replicas }
      }).then(async ({ app, from }) => {
        await hot.recordEvent(auditEvent(actor, { tenantId, type: 'app.scaled', subject: `app/${app.name}`, message: `Scaled from ${from} to ${replicas}` }))
        return app
      })
      changed(tenantId, appId)
      return toSummary(app, 0, 0)
    },

    /**
     * A new spec: stored as the next revision; when what instances run changed, a rollout
     * replaces them (within max-surge and max-unavailable, waiting for readiness).
     */
    async update(actor: Actor, tenantId: string, appId: string, input: TUpdateAppInput, opts: { precondition?: Precondition<TAppVersion> } = {}): Promise<TAppSummary> {
      requireRole(actor, tenantId, 'developer')
      const spec = ZAppSpec.parse(input.spec)
      const { app, revision, rollout } = await writeApp(db, tenantId, appId, async (tx) => {
        const cur = await liveApp(tx, tenantId, appId)
        checkPrecondition(opts.precondition, appVersion({ ...cur, deleting: false }))
        if (spec.driver !== cur.driver) throw new CoreError('BAD_REQUEST', 'The driver of an app cannot change; deploy a new app instead')
        // Volumes are fixed at creation (each replica keeps its own); an update that names none leaves them.
        if (spec.volumes.length && JSON.stringify(spec.volumes) !== JSON.stringify(cur.volumes))
          throw new CoreError('BAD_REQUEST', 'The volumes of an app are set when it is created and cannot change')
        await admit(tx, tenantId, newSpecDelta(cur, spec))
        const res = await appendRevision(tx, cur, spec, { cause: 'update', actorId: actor.userId, kind: 'update', now: clock.now() })
        const app = await tx.app.findUniqueOrThrow({ where: { id: appId }, select: appSelect })
        return { app, ...res }
      })
      await hot.recordEvent(
        auditEvent(actor, {
          tenantId,
          type: 'app.updated',
          subject: `app/${app.name}`,
          message: rollout ? `Revision ${revision} of ${app.name}: rolling out` : `Revision ${revision} of ${app.name} (instances unchanged)`,
        }),
      )
      changed(tenantId, appId)
      return toSummary(app, 0, 0)
    },

    /** Rolls back to an earlier revision: its spec becomes the newest revision. */
    async rollback(actor: Actor, tenantId: string, appId: string, toRevision: number): Promise<TAppSummary> {
      requireRole(actor, tenantId, 'developer')
      const { app, revision } = await writeApp(db, tenantId, appId, async (tx) => {
        const cur = await liveApp(tx, tenantId, appId)
        if (toRevision === cur.revision) throw new CoreError('BAD_REQUEST', `Revision ${toRevision} is the current one`)
        const old = await tx.appRevision.findUnique({ where: { appId_revision: { appId, revision: toRevision } }, select: { spec: true } })
        if (!old) throw new CoreError('NOT_FOUND', `Revision ${toRevision} not found`)
        const spec = revisionSpec(old.spec)
        await admit(tx, tenantId, newSpecDelta(cur, spec))
        const res = await appendRevision(tx, cur, spec, { cause: `rollback to revision ${toRevision}`, actorId: actor.userId, kind: 'rollback', now: clock.now() })
        return { app: await tx.app.findUniqueOrThrow({ where: { id: appId }, select: appSelect }), ...res }
      })
      await hot.recordEvent(auditEvent(actor, { tenantId, type: 'app.rolled_back', subject: `app/${app.name}`, message: `Rolled ${app.name} back to revision ${toRevision} (as revision ${revision})` }))
      changed(tenantId, appId)
      return toSummary(app, 0, 0)
    },

    /** Marks the app deleted; the replica controller stops its instances, then removes it. */
    async delete(actor: Actor, tenantId: string, appId: string): Promise<void> {
      requireRole(actor, tenantId, 'developer')
      const app = await findApp(db, tenantId, appId)
      // Only the first of several deletes at once marks it (the controller may remove the row right after).
      const { count } = await db.app.updateMany({ where: { id: appId, tenantId, deletedAt: null }, data: { deletedAt: clock.now(), generation: { increment: 1 } } })
      if (!count) return
      await hot.recordEvent(auditEvent(actor, { tenantId, type: 'app.deleted', subject: `app/${app.name}`, message: `App ${app.name} deleted` }))
      changed(tenantId, appId)
    },
  }
}
