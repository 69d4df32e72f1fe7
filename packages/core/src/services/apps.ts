import { z } from 'zod'
import type { Actor } from '../auth/actor'
import type { Clock } from '../clock'
import { requireRole } from '../auth/actor'
import { auditEvent } from '../auth/audit'
import { CoreError } from '../errors'
import type { Prisma } from '../generated/prisma/client'
import { ZExitReason, ZObservedState } from '../protocol'
import { diffSpecs, templateHash } from '../rollouts/revisions'
import { appendRevision, revisionSpec, specColumns } from '../rollouts/store'
import { writeApp } from './app-writes'
import { appVersion, checkPrecondition, type Precondition, type TAppVersion } from './versions'
import type { TCreateAppInput, TInstanceTemplate, TUpdateAppInput } from '../schemas/app'
import { ZAppSpec, ZDriver, ZPortSpec, ZRestartPolicy, ZVolumeSpec, type TVolumeSpec } from '../schemas/app'
import type { ChangeBus } from '../store/change-bus'
import type { Db, Tx } from '../store/db'
import type { HotStore } from '../store/hot-store'
import type { NetworkService } from './networks'
import { overSize } from '../volumes/size'
import { tenantUsage } from './tenants'

export const ZInstance = z.object({
  id: z.string(),
  ordinal: z.number(),
  desiredState: z.enum(['running', 'stopped']),
  state: ZObservedState,
  node: z.object({ id: z.string(), name: z.string(), address: z.string() }).nullable(),
  /** Address on the app's tenant network (kept across restarts and moves); null on host networking. */
  ip: z.string().nullable(),
  hostPorts: z.record(z.string(), z.number()),
  /** http://address:port of the first port, when placed. */
  url: z.string().nullable(),
  restarts: z.number(),
  startedAt: z.date().nullable(),
  exitCode: z.number().nullable(),
  message: z.string().nullable(),
  pendingReason: z.string().nullable(),
  generation: z.number(),
  observedGeneration: z.number(),
  /** The app revision it runs. */
  revision: z.number(),
  /** The limits of that revision: cpu, memory, pids (null: the node's default). */
  limits: z.object({ cpuMillis: z.number(), memoryMb: z.number(), pidsMax: z.number().nullable() }),
  /** Readiness: null when the app has no readiness check. */
  ready: z.boolean().nullable(),
  /** Leaving load balancers before it stops. */
  draining: z.boolean(),
  /** The last failed health check and when. */
  healthMessage: z.string().nullable(),
  healthFailedAt: z.date().nullable(),
  /** How its previous run ended (an OOM kill, a crash, a stop), kept while it restarts and runs again. */
  lastExit: z.object({ reason: ZExitReason, exitCode: z.number().nullable(), signal: z.string().nullable(), message: z.string(), at: z.date() }).nullable(),
  /** A move in progress: the step it is at. */
  moving: z.object({ moveId: z.string(), step: z.string(), state: z.enum(['running', 'compensating']) }).nullable(),
  /** Its volumes (one per volume of the app), with the space used as last measured. */
  volumes: z.array(
    // overSize: measured above its size (sizes are measured, not enforced: volumes/size.ts).
    z.object({ id: z.string(), name: z.string(), driver: z.enum(['local', 'shared']), sizeMb: z.number(), usedBytes: z.number().nullable(), overSize: z.boolean(), epoch: z.number(), node: z.string().nullable() }),
  ),
})
export type TInstance = z.infer<typeof ZInstance>

export const ZRollout = z.object({
  id: z.string(),
  kind: z.enum(['update', 'rollback', 'auto_rollback']),
  fromRevision: z.number(),
  toRevision: z.number(),
  state: z.enum(['progressing', 'succeeded', 'rolled_back', 'superseded', 'failed']),
  step: z.string(),
  message: z.string().nullable(),
  replicas: z.number(),
  oldInstances: z.number(),
  newInstances: z.number(),
  newReady: z.number(),
  createdAt: z.date(),
  finishedAt: z.date().nullable(),
})
export type TRollout = z.infer<typeof ZRollout>

export const ZRevision = z.object({
  revision: z.number(),
  cause: z.string(),
  createdAt: z.date(),
  createdBy: z.string().nullable(),
  current: z.boolean(),
  spec: z.record(z.string(), z.unknown()),
  /** What changed since the revision before. */
  changes: z.array(z.object({ field: z.string(), from: z.string().nullable(), to: z.string().nullable() })),
})
export type TRevision = z.infer<typeof ZRevision>

export const ZAppSummary = z.object({
  id: z.string(),
  name: z.string(),
  driver: ZDriver,
  image: z.string().nullable(),
  command: z.string().nullable(),
  /** Its tenant network; null: host networking. */
  network: z.object({ id: z.string(), name: z.string() }).nullable(),
  replicas: z.number(),
  running: z.number(),
  generation: z.number(),
  deleting: z.boolean(),
  createdAt: z.date(),
  updatedAt: z.date(),
})
export type TAppSummary = z.infer<typeof ZAppSummary>

export const ZAppDetail = ZAppSummary.extend({
  spec: z.object({
    driver: ZDriver,
    image: z.string().nullable(),
    command: z.string().nullable(),
    args: z.array(z.string()),
    env: z.record(z.string(), z.string()),
    ports: z.array(ZPortSpec),
    cpuMillis: z.number(),
    memoryMb: z.number(),
    pidsMax: z.number().nullable(),
    readOnlyRootfs: z.boolean(),
    restartPolicy: ZRestartPolicy,
    stopGraceSeconds: z.number(),
    nodeSelector: z.record(z.string(), z.string()),
    spread: z.enum(['none', 'soft', 'hard']),
    placementStrategy: z.enum(['spread', 'binpack']).nullable(),
    priorityClass: z.enum(['low', 'normal', 'high', 'critical']),
    maxUnavailable: z.number(),
    maxSurge: z.number(),
    progressDeadlineSeconds: z.number(),
    minReadySeconds: z.number().nullable(),
    volumes: z.array(ZVolumeSpec),
    stopAfterDisconnect: z.boolean(),
  }),
  revision: z.number(),
  /** The rollout in progress, else the last one. */
  rollout: ZRollout.nullable(),
  instances: z.array(ZInstance),
})
export type TAppDetail = z.infer<typeof ZAppDetail>

const appSelect = {
  id: true,
  tenantId: true,
  name: true,
  driver: true,
  image: true,
  command: true,
  args: true,
  env: true,
  ports: true,
  cpuMillis: true,
  memoryMb: true,
  pidsMax: true,
  readOnlyRootfs: true,
  replicas: true,
  restartPolicy: true,
  stopGraceSeconds: true,
  nodeSelector: true,
  spread: true,
  placementStrategy: true,
  priorityClass: true,
  maxUnavailable: true,
  maxSurge: true,
  progressDeadlineSeconds: true,
  minReadySeconds: true,
  revision: true,
  volumes: true,
  stopAfterDisconnect: true,
  network: { select: { id: true, name: true } },
  generation: true,
  deletedAt: true,
  createdAt: true,
  updatedAt: true,
} satisfies Prisma.AppSelect

const instanceSelect = {
  id: true,
  ordinal: true,
  desiredState: true,
  hostPorts: true,
  pendingReason: true,
  generation: true,
  revision: true,
  drainingSince: true,
  appId: true,
  node: { select: { id: true, name: true, address: true } },
  lease: { select: { ip: true } },
  appRevision: { select: { spec: true } },
} satisfies Prisma.InstanceSelect

type InstanceRow = Prisma.InstanceGetPayload<{ select: typeof instanceSelect }>
type AppRow = Prisma.AppGetPayload<{ select: typeof appSelect }>
type StatusRow = Awaited<ReturnType<HotStore['statusesOf']>> extends Map<string, infer S> ? S : never

const limitsOf = (t: TInstanceTemplate) => ({ cpuMillis: t.cpuMillis, memoryMb: t.memoryMb, pidsMax: t.pidsMax ?? null })

/** Joins an instance (desired store) with its last reported status (hot store), its move and volumes. */
export function toInstance(i: InstanceRow, portNames: string[], status: StatusRow | undefined, extra: Pick<TInstance, 'moving' | 'volumes'>): TInstance {
  const hostPorts = Object.fromEntries(i.hostPorts.map((p, k) => [portNames[k] ?? `port${k}`, p]))
  const first = i.hostPorts[0]
  // A status reported for an earlier placement of this instance is not about this one.
  const s = status && i.node && status.nodeId === i.node.id ? status : undefined
  return {
    id: i.id,
    ordinal: i.ordinal,
    desiredState: i.desiredState,
    state: s?.state ?? 'pending',
    node: i.node,
    ip: i.lease?.ip ?? null,
    hostPorts,
    url: i.node && first ? `http://${i.node.address}:${first}` : null,
    restarts: s?.restarts ?? 0,
    startedAt: s?.startedAt ?? null,
    exitCode: s?.exitCode ?? null,
    message: s?.message ?? null,
    pendingReason: i.pendingReason,
    generation: i.generation,
    observedGeneration: s?.generation ?? 0,
    revision: i.revision,
    limits: limitsOf(i.appRevision.spec as TInstanceTemplate),
    ready: s ? (s.state === 'running' ? (s.ready ?? null) : s.ready === null ? null : false) : null,
    draining: i.drainingSince !== null,
    healthMessage: s?.healthMessage ?? null,
    healthFailedAt: s?.healthFailedAt ?? null,
    lastExit:
      s?.lastExitReason && s.lastExitAt
        ? { reason: s.lastExitReason, exitCode: s.lastExitCode, signal: s.lastExitSignal, message: s.lastExitMessage ?? '', at: s.lastExitAt }
        : null,
    ...extra,
  }
}

const rolloutSelect = {
  id: true,
  kind: true,
  fromRevision: true,
  toRevision: true,
  state: true,
  step: true,
  message: true,
  replicas: true,
  oldInstances: true,
  newInstances: true,
  newReady: true,
  createdAt: true,
  finishedAt: true,
} satisfies Prisma.RolloutSelect

const toSummary = (a: AppRow, running: number): TAppSummary => ({
  id: a.id,
  name: a.name,
  driver: a.driver,
  image: a.image,
  command: a.command,
  network: a.network,
  replicas: a.replicas,
  running,
  generation: a.generation,
  deleting: a.deletedAt !== null,
  createdAt: a.createdAt,
  updatedAt: a.updatedAt,
})

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

export function createAppService({ db, hot, bus, clock, networks }: { db: Db; hot: HotStore; bus: ChangeBus; clock: Clock; networks: Pick<NetworkService, 'resolveForApp' | 'admit'> }) {
  const changed = (tenantId: string, appId: string) => {
    bus.publish({ kind: 'tenant', tenantId, what: 'app', id: appId })
    bus.publish({ kind: 'app', appId })
  }
  const findApp = async (tenantId: string, appId: string) => {
    const app = await db.app.findFirst({ where: { id: appId, tenantId }, select: appSelect })
    if (!app) throw new CoreError('NOT_FOUND', 'App not found')
    return app
  }

  return {
    async list(actor: Actor, tenantId: string): Promise<TAppSummary[]> {
      requireRole(actor, tenantId, 'viewer')
      const apps = await db.app.findMany({ where: { tenantId }, orderBy: { name: 'asc' }, select: appSelect })
      const instances = await db.instance.findMany({ where: { tenantId, desiredState: 'running', nodeId: { not: null } }, select: { id: true, appId: true, nodeId: true } })
      const statuses = await hot.statusesOf(instances.map((i) => i.id))
      const byApp = new Map<string, number>()
      for (const i of instances) {
        const st = statuses.get(i.id)
        if (st?.state === 'running' && st.nodeId === i.nodeId) byApp.set(i.appId, (byApp.get(i.appId) ?? 0) + 1)
      }
      return apps.map((a) => toSummary(a, byApp.get(a.id) ?? 0))
    },

    async get(actor: Actor, tenantId: string, appId: string): Promise<TAppDetail> {
      requireRole(actor, tenantId, 'viewer')
      const app = await findApp(tenantId, appId)
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
        ...toSummary(app, instances.filter((i) => i.desiredState === 'running' && i.state === 'running').length),
        spec: {
          driver: app.driver,
          image: app.image,
          command: app.command,
          args: app.args,
          env: app.env as Record<string, string>,
          ports: app.ports as z.infer<typeof ZPortSpec>[],
          cpuMillis: app.cpuMillis,
          memoryMb: app.memoryMb,
          pidsMax: app.pidsMax,
          readOnlyRootfs: app.readOnlyRootfs,
          restartPolicy: app.restartPolicy,
          stopGraceSeconds: app.stopGraceSeconds,
          nodeSelector: app.nodeSelector as Record<string, string>,
          spread: app.spread,
          placementStrategy: app.placementStrategy,
          priorityClass: app.priorityClass,
          maxUnavailable: app.maxUnavailable,
          maxSurge: app.maxSurge,
          progressDeadlineSeconds: app.progressDeadlineSeconds,
          minReadySeconds: app.minReadySeconds,
          volumes: app.volumes as TVolumeSpec[],
          stopAfterDisconnect: app.stopAfterDisconnect,
        },
        revision: app.revision,
        rollout,
        instances,
      }
    },

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
      await hot.recordEvent(auditEvent(actor, { tenantId, type: 'app.created', subject: `app/${app.name}`, message: `App ${app.name} deployed with ${app.replicas} replicas` }))
      changed(tenantId, app.id)
      return toSummary(app, 0)
    },

    /** `precondition`: checked against the app's version with the app locked (a conditional write). */
    async scale(actor: Actor, tenantId: string, appId: string, replicas: number, opts: { precondition?: Precondition<TAppVersion> } = {}): Promise<TAppSummary> {
      requireRole(actor, tenantId, 'developer')
      const app = await writeApp(db, tenantId, appId, async (tx) => {
        const cur = await tx.app.findFirst({ where: { id: appId, tenantId, deletedAt: null }, select: appSelect })
        if (!cur) throw new CoreError('NOT_FOUND', 'App not found')
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
      return toSummary(app, 0)
    },

    /**
     * A new spec: stored as the next revision; when what instances run changed, a rollout
     * replaces them (within max-surge and max-unavailable, waiting for readiness).
     */
    async update(actor: Actor, tenantId: string, appId: string, input: TUpdateAppInput, opts: { precondition?: Precondition<TAppVersion> } = {}): Promise<TAppSummary> {
      requireRole(actor, tenantId, 'developer')
      const spec = ZAppSpec.parse(input.spec)
      const { app, revision, rollout } = await writeApp(db, tenantId, appId, async (tx) => {
        const cur = await tx.app.findFirst({ where: { id: appId, tenantId, deletedAt: null }, select: appSelect })
        if (!cur) throw new CoreError('NOT_FOUND', 'App not found')
        checkPrecondition(opts.precondition, appVersion({ ...cur, deleting: false }))
        if (spec.driver !== cur.driver) throw new CoreError('BAD_REQUEST', 'The driver of an app cannot change; deploy a new app instead')
        // Volumes are fixed at creation (each replica keeps its own); an update that names none leaves them.
        if (spec.volumes.length && JSON.stringify(spec.volumes) !== JSON.stringify(cur.volumes))
          throw new CoreError('BAD_REQUEST', 'The volumes of an app are set when it is created and cannot change')
        await admit(tx, tenantId, { apps: 0, instances: 0, cpuMillis: cur.replicas * (spec.cpuMillis - cur.cpuMillis), memoryMb: cur.replicas * (spec.memoryMb - cur.memoryMb) })
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
      return toSummary(app, 0)
    },

    /** Rolls back to an earlier revision: its spec becomes the newest revision. */
    async rollback(actor: Actor, tenantId: string, appId: string, toRevision: number): Promise<TAppSummary> {
      requireRole(actor, tenantId, 'developer')
      const { app, revision } = await writeApp(db, tenantId, appId, async (tx) => {
        const cur = await tx.app.findFirst({ where: { id: appId, tenantId, deletedAt: null }, select: appSelect })
        if (!cur) throw new CoreError('NOT_FOUND', 'App not found')
        if (toRevision === cur.revision) throw new CoreError('BAD_REQUEST', `Revision ${toRevision} is the current one`)
        const old = await tx.appRevision.findUnique({ where: { appId_revision: { appId, revision: toRevision } }, select: { spec: true } })
        if (!old) throw new CoreError('NOT_FOUND', `Revision ${toRevision} not found`)
        const spec = revisionSpec(old.spec)
        await admit(tx, tenantId, { apps: 0, instances: 0, cpuMillis: cur.replicas * (spec.cpuMillis - cur.cpuMillis), memoryMb: cur.replicas * (spec.memoryMb - cur.memoryMb) })
        const res = await appendRevision(tx, cur, spec, { cause: `rollback to revision ${toRevision}`, actorId: actor.userId, kind: 'rollback', now: clock.now() })
        return { app: await tx.app.findUniqueOrThrow({ where: { id: appId }, select: appSelect }), ...res }
      })
      await hot.recordEvent(auditEvent(actor, { tenantId, type: 'app.rolled_back', subject: `app/${app.name}`, message: `Rolled ${app.name} back to revision ${toRevision} (as revision ${revision})` }))
      changed(tenantId, appId)
      return toSummary(app, 0)
    },

    /** Every revision, newest first, with what changed since the one before. */
    async revisions(actor: Actor, tenantId: string, appId: string): Promise<TRevision[]> {
      requireRole(actor, tenantId, 'viewer')
      const app = await findApp(tenantId, appId)
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
      await findApp(tenantId, appId)
      return db.rollout.findMany({ where: { appId }, orderBy: { createdAt: 'desc' }, take: 50, select: rolloutSelect })
    },

    /** Marks the app deleted; the replica controller stops its instances, then removes it. */
    async delete(actor: Actor, tenantId: string, appId: string): Promise<void> {
      requireRole(actor, tenantId, 'developer')
      const app = await findApp(tenantId, appId)
      // Only the first of several deletes at once marks it (the controller may remove the row right after).
      const { count } = await db.app.updateMany({ where: { id: appId, tenantId, deletedAt: null }, data: { deletedAt: clock.now(), generation: { increment: 1 } } })
      if (!count) return
      await hot.recordEvent(auditEvent(actor, { tenantId, type: 'app.deleted', subject: `app/${app.name}`, message: `App ${app.name} deleted` }))
      changed(tenantId, appId)
    },
  }
}
export type AppService = ReturnType<typeof createAppService>
