import { z } from 'zod'
import { CoreError } from '../errors'
import type { Prisma } from '../generated/prisma/client'
import { ZExitReason, ZObservedState } from '../protocol'
import type { TInstanceTemplate } from '../schemas/app'
import { ZDriver, ZPortSpec, ZRestartPolicy, ZVolumeSpec, type TVolumeSpec } from '../schemas/app'
import type { Db } from '../store/db'
import type { HotStore } from '../store/hot-store'

// What callers see of an app (the API's output schemas), the columns read for it and the
// mapping from rows to those shapes: shared by the app queries and commands.

/** How an instance's previous run ended (an OOM kill, a crash, a stop), kept while it restarts and runs again. */
export const ZInstanceLastExit = z.object({ reason: ZExitReason, exitCode: z.number().nullable(), signal: z.string().nullable(), message: z.string(), at: z.date() })

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
  lastExit: ZInstanceLastExit.nullable(),
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
  /** Replicas meant to run that keep crashing (see isCrashing): the list says "failing", not "starting". */
  crashing: z.number(),
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

export const appSelect = {
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

export const instanceSelect = {
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
export type AppRow = Prisma.AppGetPayload<{ select: typeof appSelect }>
export type StatusRow = Awaited<ReturnType<HotStore['statusesOf']>> extends Map<string, infer S> ? S : never

/** The last exit of a reported status (null: none reported yet). */
export const lastExitOf = (s: StatusRow): z.infer<typeof ZInstanceLastExit> | null =>
  s.lastExitReason && s.lastExitAt ? { reason: s.lastExitReason, exitCode: s.lastExitCode, signal: s.lastExitSignal, message: s.lastExitMessage ?? '', at: s.lastExitAt } : null

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
    lastExit: s ? lastExitOf(s) : null,
    ...extra,
  }
}

export const rolloutSelect = {
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

/** An instance that keeps crashing: failed, exited other than cleanly, or down again after restarts. One definition for the list and the app page. */
export const isCrashing = (s: { state: string; exitCode: number | null; restarts: number }): boolean =>
  s.state === 'failed' || (s.state === 'exited' && s.exitCode !== 0) || (s.state !== 'running' && s.restarts > 0)

export const toSummary = (a: AppRow, running: number, crashing: number): TAppSummary => ({
  id: a.id,
  name: a.name,
  driver: a.driver,
  image: a.image,
  command: a.command,
  network: a.network,
  replicas: a.replicas,
  running,
  crashing,
  generation: a.generation,
  deleting: a.deletedAt !== null,
  createdAt: a.createdAt,
  updatedAt: a.updatedAt,
})

export const toDetailSpec = (app: AppRow): TAppDetail['spec'] => ({
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
})

export async function findApp(db: Db, tenantId: string, appId: string): Promise<AppRow> {
  const app = await db.app.findFirst({ where: { id: appId, tenantId }, select: appSelect })
  if (!app) throw new CoreError('NOT_FOUND', 'App not found')
  return app
}
