/** Moves as the API sees them: start one (operators), follow them live, cancel one. */
import { z } from 'zod'
import type { Actor } from '../auth/actor'
import { requireOperator } from '../auth/actor'
import { CoreError } from '../errors'
import type { Prisma } from '../generated/prisma/client'
import type { ChangeBus } from '../store/change-bus'
import type { Db } from '../store/db'
import type { HotStore } from '../store/hot-store'
import { STEP_NAMES } from './steps'
import type { MoveStore } from './store'
import type { MoveReason } from './types'

export const ZMoveStep = z.object({
  index: z.number(),
  name: z.string(),
  state: z.enum(['pending', 'running', 'done', 'skipped', 'failed', 'compensating', 'compensated']),
  detail: z.string().nullable(),
  progress: z.number().nullable(),
  bytes: z.number().nullable(),
  error: z.string().nullable(),
  startedAt: z.date().nullable(),
  finishedAt: z.date().nullable(),
  compensatedAt: z.date().nullable(),
})

export const ZMove = z.object({
  id: z.string(),
  state: z.enum(['running', 'compensating', 'succeeded', 'failed']),
  reason: z.enum(['manual', 'drain', 'node_lost', 'preemption']),
  step: z.string(),
  error: z.string().nullable(),
  tenant: z.object({ id: z.string(), slug: z.string() }),
  app: z.object({ id: z.string(), name: z.string() }),
  instance: z.object({ id: z.string(), ordinal: z.number() }),
  source: z.object({ id: z.string(), name: z.string() }),
  target: z.object({ id: z.string(), name: z.string() }).nullable(),
  /** Last ready at the source -> first ready at the target, as the platform saw it. */
  downtimeMs: z.number().nullable(),
  bytesCopied: z.number(),
  copyMs: z.number(),
  /** 0..1 over the steps, the running step's own progress included. */
  progress: z.number(),
  createdAt: z.date(),
  finishedAt: z.date().nullable(),
  steps: z.array(ZMoveStep),
})
export type TMove = z.infer<typeof ZMove>

export const ZStartMoveInput = z.object({ instanceId: z.string().uuid(), targetNodeId: z.string().uuid().nullable().default(null) })
export type TStartMoveInput = z.infer<typeof ZStartMoveInput>

const moveInclude = { steps: { orderBy: { index: 'asc' } } } satisfies Prisma.MoveInclude
type MoveRow = Prisma.MoveGetPayload<{ include: typeof moveInclude }>

const ACTIVE = ['running', 'compensating'] as const

export function createMoveService({ db, hot, bus, store }: { db: Db; hot: HotStore; bus: ChangeBus; store: MoveStore }) {
  async function toMoves(rows: MoveRow[]): Promise<TMove[]> {
    const nodeIds = [...new Set(rows.flatMap((r) => [r.sourceNodeId, ...(r.targetNodeId ? [r.targetNodeId] : [])]))]
    const [nodes, apps, tenants, instances] = await Promise.all([
      db.node.findMany({ where: { id: { in: nodeIds } }, select: { id: true, name: true } }),
      db.app.findMany({ where: { id: { in: [...new Set(rows.map((r) => r.appId))] } }, select: { id: true, name: true } }),
      db.tenant.findMany({ where: { id: { in: [...new Set(rows.map((r) => r.tenantId))] } }, select: { id: true, slug: true } }),
      db.instance.findMany({ where: { id: { in: rows.map((r) => r.instanceId) } }, select: { id: true, ordinal: true } }),
    ])
    const name = new Map(nodes.map((n) => [n.id, n.name]))
    const app = new Map(apps.map((a) => [a.id, a.name]))
    const slug = new Map(tenants.map((t) => [t.id, t.slug]))
    const ordinal = new Map(instances.map((i) => [i.id, i.ordinal]))
    return rows.map((m) => {
      const finished = m.steps.filter((s) => s.state === 'done' || s.state === 'skipped').length
      const running = m.steps.find((s) => s.state === 'running')
      return {
        id: m.id,
        state: m.state,
        reason: m.reason,
        step: m.step,
        error: m.error,
        tenant: { id: m.tenantId, slug: slug.get(m.tenantId) ?? '(deleted)' },
        app: { id: m.appId, name: app.get(m.appId) ?? '(deleted)' },
        instance: { id: m.instanceId, ordinal: ordinal.get(m.instanceId) ?? -1 },
        source: { id: m.sourceNodeId, name: name.get(m.sourceNodeId) ?? '(removed)' },
        target: m.targetNodeId ? { id: m.targetNodeId, name: name.get(m.targetNodeId) ?? '(removed)' } : null,
        downtimeMs: m.downtimeMs,
        bytesCopied: Number(m.bytesCopied),
        copyMs: m.copyMs,
        progress: m.state === 'succeeded' ? 1 : Math.min(1, (finished + (running?.progress ?? 0)) / STEP_NAMES.length),
        createdAt: m.createdAt,
        finishedAt: m.finishedAt,
        steps: m.steps.map((s) => ({
          index: s.index,
          name: s.name,
          state: s.state,
          detail: s.detail,
          progress: s.progress,
          bytes: s.bytes === null ? null : Number(s.bytes),
          error: s.error,
          startedAt: s.startedAt,
          finishedAt: s.finishedAt,
          compensatedAt: s.compensatedAt,
        })),
      }
    })
  }

  /**
   * Starts a move of a running instance (by hand, drain, node loss, preemption). One move
   * per instance at a time; a local volume moves only while its node answers (it is copied).
   */
  async function begin(input: { instanceId: string; reason: MoveReason; targetNodeId: string | null; requestedById: string | null }): Promise<string> {
    const { id, tenantId, appName, ordinal, sourceName } = await db.$transaction(async (tx) => {
      await tx.$queryRaw`SELECT id FROM "Instance" WHERE id = ${input.instanceId}::uuid FOR UPDATE`
      const i = await tx.instance.findUnique({
        where: { id: input.instanceId },
        select: { id: true, tenantId: true, appId: true, ordinal: true, nodeId: true, desiredState: true, paused: true, app: { select: { name: true, deletedAt: true } }, node: { select: { name: true } } },
      })
      if (!i) throw new CoreError('NOT_FOUND', 'Instance not found')
      if (!i.nodeId || i.desiredState !== 'running' || i.app.deletedAt) throw new CoreError('BAD_REQUEST', 'Only a placed, running instance can move')
      if (await tx.move.findFirst({ where: { instanceId: i.id, state: { in: [...ACTIVE] } }, select: { id: true } })) throw new CoreError('CONFLICT', 'This instance is already moving')
      if (input.targetNodeId === i.nodeId) throw new CoreError('BAD_REQUEST', 'The instance already runs on that node')
      if (input.targetNodeId && !(await tx.node.findUnique({ where: { id: input.targetNodeId }, select: { id: true } }))) throw new CoreError('NOT_FOUND', 'Node not found')
      if (input.reason !== 'node_lost' && (await tx.volume.count({ where: { appId: i.appId, ordinal: i.ordinal, driver: 'local' } }))) {
        const [st] = await hot.nodeStatuses([i.nodeId])
        if (!st?.connected) throw new CoreError('BAD_REQUEST', `${i.node?.name ?? 'Its node'} does not answer: its local volume cannot be copied until the node returns`)
      }
      const id = await store.create(tx, { tenantId: i.tenantId, appId: i.appId, instanceId: i.id, reason: input.reason, sourceNodeId: i.nodeId, targetNodeId: input.targetNodeId, requestedById: input.requestedById })
      return { id, tenantId: i.tenantId, appName: i.app.name, ordinal: i.ordinal, sourceName: i.node?.name ?? i.nodeId }
    })
    const why = { manual: 'by hand', drain: 'to drain its node', node_lost: 'off a lost node', preemption: 'to make room for a higher-priority instance' }[input.reason]
    await hot.recordEvent({
      tenantId,
      kind: input.requestedById ? 'audit' : 'system',
      type: 'move.started',
      actorId: input.requestedById,
      subject: `app/${appName}`,
      message: `Moving ${appName}-${ordinal} off ${sourceName} ${why}`,
      data: { moveId: id },
    })
    bus.publish({ kind: 'move', moveId: id })
    bus.publish({ kind: 'tenant', tenantId, what: 'instances' })
    return id
  }

  return {
    begin,

    async start(actor: Actor, input: TStartMoveInput): Promise<TMove> {
      requireOperator(actor)
      const id = await begin({ instanceId: input.instanceId, reason: 'manual', targetNodeId: input.targetNodeId, requestedById: actor.userId })
      return (await toMoves([await db.move.findUniqueOrThrow({ where: { id }, include: moveInclude })]))[0]!
    },

    /** Moves still running first, then the most recent ones. */
    async list(actor: Actor, opts: { limit: number }): Promise<TMove[]> {
      requireOperator(actor)
      const [active, done] = await Promise.all([
        db.move.findMany({ where: { state: { in: [...ACTIVE] } }, orderBy: { createdAt: 'desc' }, include: moveInclude }),
        db.move.findMany({ where: { state: { notIn: [...ACTIVE] } }, orderBy: { createdAt: 'desc' }, take: opts.limit, include: moveInclude }),
      ])
      return toMoves([...active, ...done])
    },

    async get(actor: Actor, id: string): Promise<TMove> {
      requireOperator(actor)
      const m = await db.move.findUnique({ where: { id }, include: moveInclude })
      if (!m) throw new CoreError('NOT_FOUND', 'Move not found')
      return (await toMoves([m]))[0]!
    },

    /** Undoes a running move: the instance ends up running at the source. */
    async cancel(actor: Actor, id: string): Promise<void> {
      requireOperator(actor)
      const { count } = await db.move.updateMany({ where: { id, state: 'running' }, data: { state: 'compensating', error: `cancelled by ${actor.email}` } })
      if (!count) throw new CoreError('CONFLICT', 'Only a running move can be cancelled')
      bus.publish({ kind: 'move', moveId: id })
    },

    /** Instances of these ids that are moving, with the step they are at (instance rows show it). */
    async movingOf(instanceIds: string[]): Promise<Map<string, { moveId: string; step: string; state: 'running' | 'compensating' }>> {
      if (!instanceIds.length) return new Map()
      const rows = await db.move.findMany({ where: { instanceId: { in: instanceIds }, state: { in: [...ACTIVE] } }, select: { id: true, instanceId: true, step: true, state: true } })
      return new Map(rows.map((r) => [r.instanceId, { moveId: r.id, step: r.step, state: r.state as 'running' | 'compensating' }]))
    },
  }
}
export type MoveService = ReturnType<typeof createMoveService>
