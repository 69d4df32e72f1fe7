import { z } from 'zod'
import type { Actor } from '../auth/actor'
import { requireOperator, requireRole } from '../auth/actor'
import { auditEvent } from '../auth/audit'
import { CoreError } from '../errors'
import { Prisma } from '../generated/prisma/client'
import { lbNodeWhere, type LbNodes } from '../load-balancers/nodes'
import { ZLbRule, type TCreateLbInput, type TLbSettings } from '../schemas/load-balancer'
import type { ChangeBus } from '../store/change-bus'
import type { Db, Hot, Tx } from '../store/db'
import type { HotStore } from '../store/hot-store'
import type { Clock } from '../clock'
import { checkPrecondition, lbVersion, type Precondition, type TLbVersion } from './versions'

export const ZLbState = z.enum(['provisioning', 'active', 'error', 'no_nodes'])

export const ZLoadBalancer = z.object({
  id: z.string(),
  name: z.string(),
  algorithm: z.enum(['roundrobin', 'leastconn']),
  stickySeconds: z.number().nullable(),
  drainSeconds: z.number(),
  retryUnanswered: z.boolean(),
  state: ZLbState,
  /** Why it is not active, in words. */
  message: z.string().nullable(),
  listeners: z.array(z.object({ protocol: z.enum(['http', 'tcp']), port: z.number(), rules: z.array(ZLbRule) })),
  /**
   * Every instance of its targets, with its place in the pool and its traffic summed over the
   * load-balancing nodes' last samples (null: no recent sample).
   */
  servers: z.array(
    z.object({
      instanceId: z.string(),
      app: z.string(),
      ordinal: z.number(),
      state: z.enum(['in_pool', 'draining', 'not_ready']),
      current: z.number().nullable(),
      perSecond: z.number().nullable(),
    }),
  ),
  /** One per serving node and listener: http://node-address:port. */
  addresses: z.array(z.object({ node: z.string(), url: z.string(), state: z.enum(['provisioning', 'active', 'error']), message: z.string().nullable() })),
  createdAt: z.date(),
})
export type TLoadBalancer = z.infer<typeof ZLoadBalancer>

const lbSelect = {
  id: true,
  tenantId: true,
  name: true,
  algorithm: true,
  stickySeconds: true,
  drainSeconds: true,
  retryUnanswered: true,
  createdAt: true,
  listeners: { orderBy: { port: 'asc' }, select: { protocol: true, port: true, rules: true } },
} satisfies Prisma.LoadBalancerSelect
type LbRow = Prisma.LoadBalancerGetPayload<{ select: typeof lbSelect }>

export interface LbServiceDeps {
  db: Db
  hot: HotStore
  clock: Clock
  hotDb: Hot
  bus: ChangeBus
  lbNodes: LbNodes
  /** Listener ports the platform hands out (and accepts). */
  ports: { min: number; max: number }
}

/**
 * Tenants' load balancers. Creation is asynchronous: the rows are written at once, the
 * load-balancing nodes pick them up with their next desired state and report back, and the
 * state shown is what they reported.
 */
/** Per-server samples older than this are from a node that stopped sending them. */
const STATS_FRESH_MS = 30_000

export function createLoadBalancerService({ db, hot, hotDb, bus, clock, lbNodes, ports }: LbServiceDeps) {
  const changed = async (tenantId: string, lbId: string) => {
    const nodeIds = await lbNodes.nodesServing({ tenantId })
    if (nodeIds.length) await db.node.updateMany({ where: { id: { in: nodeIds } }, data: { desiredGeneration: { increment: 1 } } })
    nodeIds.forEach((nodeId) => bus.publish({ kind: 'node-desired', nodeId }))
    bus.publish({ kind: 'tenant', tenantId, what: 'lb', id: lbId })
  }

  async function present(rows: LbRow[]): Promise<TLoadBalancer[]> {
    const tenants = [...new Set(rows.map((r) => r.tenantId))]
    const nodesByTenant = new Map<string, { id: string; name: string; address: string }[]>()
    for (const t of tenants) nodesByTenant.set(t, await db.node.findMany({ where: lbNodeWhere(t), orderBy: { name: 'asc' }, select: { id: true, name: true, address: true } }))
    const statuses = await hotDb.lbNodeStatus.findMany({ where: { lbId: { in: rows.map((r) => r.id) } } })
    const ready = new Set((await hotDb.nodeStatus.findMany({ where: { state: 'ready', connected: true }, select: { nodeId: true } })).map((n) => n.nodeId))
    const servers = await serversOf(rows)
    return rows.map((lb) => {
      const nodes = nodesByTenant.get(lb.tenantId) ?? []
      const mine = new Map(statuses.filter((s) => s.lbId === lb.id).map((s) => [s.nodeId, s]))
      const perNode = nodes.map((n) => {
        const s = mine.get(n.id)
        return { node: n, state: (s?.state ?? 'provisioning') as 'provisioning' | 'active' | 'error', message: s?.message ?? null, ready: ready.has(n.id) }
      })
      const served = perNode.filter((p) => p.ready)
      const state = !served.length ? 'no_nodes' : served.some((p) => p.state === 'active') ? 'active' : served.every((p) => p.state === 'error') ? 'error' : 'provisioning'
      const message =
        state === 'no_nodes'
          ? 'Waiting for a load-balancing node: an operator marks nodes for load balancing on the nodes page'
          : state === 'error'
            ? (served.find((p) => p.message)?.message ?? 'every node failed to serve it')
            : state === 'provisioning'
              ? 'Load-balancing nodes are setting it up'
              : null
      return {
        id: lb.id,
        name: lb.name,
        algorithm: lb.algorithm,
        stickySeconds: lb.stickySeconds,
        drainSeconds: lb.drainSeconds,
        retryUnanswered: lb.retryUnanswered,
        state,
        message,
        listeners: lb.listeners.map((l) => ({ protocol: l.protocol, port: l.port, rules: l.rules as z.infer<typeof ZLbRule>[] })),
        servers: servers.get(lb.id) ?? [],
        addresses: served.flatMap((p) => lb.listeners.map((l) => ({ node: p.node.name, url: `${l.protocol === 'http' ? 'http' : 'tcp'}://${p.node.address}:${l.port}`, state: p.state, message: p.message }))),
        createdAt: lb.createdAt,
      }
    })
  }

  /** Per load balancer: the instances of its targets, their pool state and their traffic. */
  async function serversOf(rows: LbRow[]): Promise<Map<string, TLoadBalancer['servers']>> {
    const appsOf = (lb: LbRow) => new Set(lb.listeners.flatMap((l) => (l.rules as z.infer<typeof ZLbRule>[]).flatMap((r) => r.targets.map((t) => t.appId))))
    const appIds = [...new Set(rows.flatMap((lb) => [...appsOf(lb)]))]
    const instances = await db.instance.findMany({
      where: { appId: { in: appIds }, desiredState: 'running', nodeId: { not: null } },
      orderBy: [{ ordinal: 'asc' }, { createdAt: 'asc' }],
      select: { id: true, appId: true, ordinal: true, nodeId: true, drainingSince: true, app: { select: { name: true } } },
    })
    const statuses = await hot.statusesOf(instances.map((i) => i.id))
    // Samples come every few seconds; older ones are from a node that stopped sending.
    const since = new Date(clock.now().getTime() - STATS_FRESH_MS)
    const stats = await hotDb.lbServerStat.groupBy({
      by: ['lbId', 'instanceId'],
      where: { lbId: { in: rows.map((r) => r.id) }, updatedAt: { gte: since } },
      _sum: { current: true, perSecond: true },
    })
    const statOf = new Map(stats.map((s) => [`${s.lbId}|${s.instanceId}`, s._sum]))
    return new Map(
      rows.map((lb) => {
        const apps = appsOf(lb)
        return [
          lb.id,
          instances
            .filter((i) => apps.has(i.appId))
            .map((i) => {
              const s = statuses.get(i.id)
              const ready = !!s && s.nodeId === i.nodeId && s.state === 'running' && s.ready !== false
              const st = statOf.get(`${lb.id}|${i.id}`)
              return {
                instanceId: i.id,
                app: i.app.name,
                ordinal: i.ordinal,
                state: i.drainingSince ? ('draining' as const) : ready ? ('in_pool' as const) : ('not_ready' as const),
                current: st?.current ?? null,
                perSecond: st?.perSecond ?? null,
              }
            }),
        ]
      }),
    )
  }

  /** Every target is an app of this tenant with that port; ports are in range and free. */
  async function checkSettings(tx: Tx, tenantId: string, s: TLbSettings, lbId: string | null) {
    const appIds = [...new Set(s.listeners.flatMap((l) => l.rules.flatMap((r) => r.targets.map((t) => t.appId))))]
    const apps = await tx.app.findMany({ where: { id: { in: appIds }, tenantId, deletedAt: null }, select: { id: true, name: true, ports: true } })
    const byId = new Map(apps.map((a) => [a.id, a]))
    for (const l of s.listeners)
      for (const r of l.rules)
        for (const t of r.targets) {
          const app = byId.get(t.appId)
          if (!app) throw new CoreError('BAD_REQUEST', 'A rule targets an app that does not exist')
          if (!(app.ports as { name: string }[]).some((p) => p.name === t.port)) throw new CoreError('BAD_REQUEST', `App ${app.name} has no port named "${t.port}"`)
        }
    const taken = new Set(
      (await tx.lbListener.findMany({ where: lbId ? { lbId: { not: lbId } } : {}, select: { port: true } })).map((l) => l.port),
    )
    const chosen: number[] = []
    for (const l of s.listeners) {
      if (l.port === undefined) continue
      if (l.port < ports.min || l.port > ports.max) throw new CoreError('BAD_REQUEST', `Listener ports are between ${ports.min} and ${ports.max}`)
      if (taken.has(l.port)) throw new CoreError('CONFLICT', `Port ${l.port} is taken by another load balancer`)
      chosen.push(l.port)
    }
    let next = ports.min
    return s.listeners.map((l) => {
      if (l.port !== undefined) return { ...l, port: l.port }
      while (next <= ports.max && (taken.has(next) || chosen.includes(next))) next++
      if (next > ports.max) throw new CoreError('CONFLICT', 'No free listener port left on the load-balancing nodes')
      chosen.push(next)
      return { ...l, port: next }
    })
  }

  const unique = <T>(p: Promise<T>): Promise<T> =>
    p.catch((err) => {
      // Two creations raced for one port or name.
      if (err instanceof Prisma.PrismaClientKnownRequestError && err.code === 'P2002') throw new CoreError('CONFLICT', 'That name or port was just taken; try again')
      throw err
    })

  return {
    async list(actor: Actor, tenantId: string): Promise<TLoadBalancer[]> {
      requireRole(actor, tenantId, 'viewer')
      return present(await db.loadBalancer.findMany({ where: { tenantId, deletedAt: null }, orderBy: { name: 'asc' }, select: lbSelect }))
    },

    async get(actor: Actor, tenantId: string, lbId: string): Promise<TLoadBalancer> {
      requireRole(actor, tenantId, 'viewer')
      const row = await db.loadBalancer.findFirst({ where: { id: lbId, tenantId, deletedAt: null }, select: lbSelect })
      if (!row) throw new CoreError('NOT_FOUND', 'Load balancer not found')
      return (await present([row]))[0]!
    },

    async create(actor: Actor, tenantId: string, input: TCreateLbInput): Promise<TLoadBalancer> {
      requireRole(actor, tenantId, 'developer')
      const row = await unique(
        db.$transaction(async (tx) => {
          await tx.$queryRaw`SELECT id FROM "Tenant" WHERE id = ${tenantId}::uuid FOR UPDATE`
          const t = await tx.tenant.findUnique({ where: { id: tenantId }, select: { quotaLoadBalancers: true } })
          if (!t) throw new CoreError('NOT_FOUND', 'Tenant not found')
          const used = await tx.loadBalancer.count({ where: { tenantId, deletedAt: null } })
          if (used + 1 > t.quotaLoadBalancers) throw new CoreError('QUOTA_EXCEEDED', `Quota exceeded (load balancers: ${used} of ${t.quotaLoadBalancers} used)`)
          if (await tx.loadBalancer.findFirst({ where: { tenantId, name: input.name }, select: { id: true } }))
            throw new CoreError('CONFLICT', `A load balancer named "${input.name}" already exists`)
          const listeners = await checkSettings(tx, tenantId, input, null)
          return tx.loadBalancer.create({
            data: {
              tenantId,
              name: input.name,
              algorithm: input.algorithm,
              stickySeconds: input.stickySeconds,
              drainSeconds: input.drainSeconds,
              retryUnanswered: input.retryUnanswered,
              listeners: { create: listeners.map((l) => ({ protocol: l.protocol, port: l.port, rules: l.rules as Prisma.InputJsonValue })) },
            },
            select: lbSelect,
          })
        }),
      )
      await hot.recordEvent(auditEvent(actor, { tenantId, type: 'lb.created', subject: `lb/${row.name}`, message: `Load balancer ${row.name} created (ports ${row.listeners.map((l) => l.port).join(', ')})` }))
      await changed(tenantId, row.id)
      return (await present([row]))[0]!
    },

    /** `precondition`: checked against the load balancer's version with its row locked (a conditional write). */
    async update(actor: Actor, tenantId: string, lbId: string, input: TLbSettings, opts: { precondition?: Precondition<TLbVersion> } = {}): Promise<TLoadBalancer> {
      requireRole(actor, tenantId, 'developer')
      const row = await unique(
        db.$transaction(async (tx) => {
          // Updates of one load balancer take turns: each sees the settings the one before left.
          await tx.$queryRaw`SELECT id FROM "LoadBalancer" WHERE id = ${lbId}::uuid AND "tenantId" = ${tenantId}::uuid FOR UPDATE`
          const cur = await tx.loadBalancer.findFirst({ where: { id: lbId, tenantId, deletedAt: null }, select: lbSelect })
          if (!cur) throw new CoreError('NOT_FOUND', 'Load balancer not found')
          checkPrecondition(opts.precondition, lbVersion(cur))
          const listeners = await checkSettings(tx, tenantId, input, lbId)
          await tx.lbListener.deleteMany({ where: { lbId } })
          return tx.loadBalancer.update({
            where: { id: lbId },
            data: {
              algorithm: input.algorithm,
              stickySeconds: input.stickySeconds,
              drainSeconds: input.drainSeconds,
              retryUnanswered: input.retryUnanswered,
              listeners: { create: listeners.map((l) => ({ protocol: l.protocol, port: l.port, rules: l.rules as Prisma.InputJsonValue })) },
            },
            select: lbSelect,
          })
        }),
      )
      await hot.recordEvent(auditEvent(actor, { tenantId, type: 'lb.updated', subject: `lb/${row.name}`, message: `Load balancer ${row.name} updated` }))
      await changed(tenantId, lbId)
      return (await present([row]))[0]!
    },

    async delete(actor: Actor, tenantId: string, lbId: string): Promise<void> {
      requireRole(actor, tenantId, 'developer')
      const row = await db.loadBalancer.findFirst({ where: { id: lbId, tenantId, deletedAt: null }, select: { name: true } })
      if (!row) throw new CoreError('NOT_FOUND', 'Load balancer not found')
      await db.loadBalancer.delete({ where: { id: lbId } })
      await hotDb.lbNodeStatus.deleteMany({ where: { lbId } })
      await hot.recordEvent(auditEvent(actor, { tenantId, type: 'lb.deleted', subject: `lb/${row.name}`, message: `Load balancer ${row.name} deleted` }))
      await changed(tenantId, lbId)
    },

    /** Operators mark the nodes that serve load balancers. */
    async setNodeLoadBalancing(actor: Actor, nodeId: string, enabled: boolean): Promise<void> {
      requireOperator(actor)
      const node = await db.node.findUnique({ where: { id: nodeId }, select: { name: true } })
      if (!node) throw new CoreError('NOT_FOUND', 'Node not found')
      await db.node.update({ where: { id: nodeId }, data: { loadBalancing: enabled, desiredGeneration: { increment: 1 } } })
      await hot.recordEvent({ kind: 'audit', type: enabled ? 'node.lb_enabled' : 'node.lb_disabled', actorId: actor.userId, subject: `node/${node.name}`, message: `Load balancing ${enabled ? 'enabled' : 'disabled'} on ${node.name}` })
      if (!enabled) await hotDb.lbNodeStatus.deleteMany({ where: { nodeId } })
      bus.publish({ kind: 'node-desired', nodeId })
      bus.publish({ kind: 'fleet', what: 'node', nodeId })
    },
  }
}
export type LoadBalancerService = ReturnType<typeof createLoadBalancerService>
