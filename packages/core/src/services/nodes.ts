import { z } from 'zod'
import type { Actor } from '../auth/actor'
import { requireOperator, requireSignedIn } from '../auth/actor'
import { auditEvent } from '../auth/audit'
import { hashToken, mintToken, newToken } from '../auth/secrets'
import type { Clock } from '../clock'
import { CoreError } from '../errors'
import { ZVolumeCapability, type TVolumeCapability } from '../protocol/volume'
import { ZContainerCapability, ZSandboxCapability, type TContainerCapability, type TSandboxCapability } from '../protocol/sandbox'
import { ZDriver } from '../schemas/app'
import { lastExitOf, ZInstanceLastExit } from './app-views'
import type { ChangeBus } from '../store/change-bus'
import type { Prisma } from '../generated/prisma/client'
import type { Db } from '../store/db'
import type { HotStore } from '../store/hot-store'
import type { NodeLeases } from '../store/node-leases'

export const ZNode = z.object({
  id: z.string(),
  name: z.string(),
  address: z.string(),
  labels: z.record(z.string(), z.string()),
  drivers: z.array(ZDriver),
  agentVersion: z.string(),
  schedulable: z.boolean(),
  /** Marked by an operator to serve load balancers, and the data plane its agent offers. */
  loadBalancing: z.boolean(),
  lbDriver: z.enum(['haproxy', 'builtin']).nullable(),
  /** Drain in progress: instances still to move off. */
  drain: z.object({ remaining: z.number() }).nullable(),
  dedicatedTenant: z.object({ id: z.string(), slug: z.string() }).nullable(),
  state: z.enum(['ready', 'not_ready']),
  connected: z.boolean(),
  lastHeartbeatAt: z.date().nullable(),
  capacity: z.object({ cpuMillis: z.number(), memoryMb: z.number() }),
  /** Requested by instances placed here. */
  allocated: z.object({ cpuMillis: z.number(), memoryMb: z.number(), instances: z.number() }),
  /** Measured by the agent. */
  usage: z.object({ cpuMillis: z.number(), memoryMb: z.number() }),
  desiredGeneration: z.number(),
  appliedGeneration: z.number(),
  /** What the agent offers for volumes (null: an agent that does not say). */
  volume: ZVolumeCapability.nullable(),
  /** How the node isolates process instances (null: the agent did not say, e.g. a simulated one; only an explicit "unsandboxed" restricts placement). */
  sandbox: ZSandboxCapability.nullable(),
  /** How the container engine isolates containers (null: no docker driver, or an agent from before). */
  containers: ZContainerCapability.nullable(),
})
export type TNode = z.infer<typeof ZNode>

export const ZNodeInstance = z.object({
  id: z.string(),
  tenant: z.object({ id: z.string(), slug: z.string() }),
  app: z.object({ id: z.string(), name: z.string() }),
  ordinal: z.number(),
  desiredState: z.enum(['running', 'stopped']),
  state: z.string(),
  hostPorts: z.array(z.number()),
  cpuMillis: z.number(),
  memoryMb: z.number(),
  restarts: z.number(),
  /** How its previous run on this node ended (the app page's last exit, for an operator looking at the node). */
  lastExit: ZInstanceLastExit.nullable(),
  /** Volumes it mounts (names), so the console can say what a move would copy. */
  volumes: z.array(z.object({ name: z.string(), driver: z.enum(['local', 'shared']) })),
  /** A move in progress: the step it is at. */
  moving: z.object({ moveId: z.string(), step: z.string() }).nullable(),
})
export type TNodeInstance = z.infer<typeof ZNodeInstance>

export const ZJoinToken = z.object({
  id: z.string(),
  description: z.string(),
  prefix: z.string(),
  expiresAt: z.date(),
  uses: z.number(),
  maxUses: z.number(),
  revoked: z.boolean(),
  createdAt: z.date(),
  /** Who created it (null: the account is gone). */
  createdBy: z.string().nullable(),
  /** A re-key token: its one use gives this node a new credential. */
  rekeyNode: z.object({ id: z.string(), name: z.string() }).nullable(),
})
export type TJoinToken = z.infer<typeof ZJoinToken>

const joinTokenSelect = {
  id: true,
  description: true,
  prefix: true,
  expiresAt: true,
  uses: true,
  maxUses: true,
  revokedAt: true,
  createdAt: true,
  createdById: true,
  rekeyNode: { select: { id: true, name: true } },
} satisfies Prisma.JoinTokenSelect

function toJoinToken(t: Prisma.JoinTokenGetPayload<{ select: typeof joinTokenSelect }>, createdBy: string | null): TJoinToken {
  return {
    id: t.id,
    description: t.description,
    prefix: t.prefix,
    expiresAt: t.expiresAt,
    uses: t.uses,
    maxUses: t.maxUses,
    revoked: t.revokedAt !== null,
    createdAt: t.createdAt,
    createdBy,
    rekeyNode: t.rekeyNode,
  }
}

export function createNodeService({ db, hot, leases, bus, clock }: { db: Db; hot: HotStore; leases: NodeLeases; bus: ChangeBus; clock: Clock }) {
  return {
    async list(actor: Actor): Promise<TNode[]> {
      requireOperator(actor)
      const nodes = await db.node.findMany({
        orderBy: { name: 'asc' },
        select: {
          id: true,
          name: true,
          address: true,
          labels: true,
          drivers: true,
          agentVersion: true,
          loadBalancing: true,
          lbDriver: true,
          schedulable: true,
          cpuMillis: true,
          memoryMb: true,
          desiredGeneration: true,
          draining: true,
          capabilities: true,
          dedicatedTenant: { select: { id: true, slug: true } },
          instances: { where: { releasedAt: null }, select: { cpuMillis: true, memoryMb: true, desiredState: true } },
        },
      })
      const statuses = new Map((await hot.nodeStatuses(nodes.map((n) => n.id))).map((s) => [s.nodeId, s]))
      return nodes.map((n) => ({
        id: n.id,
        name: n.name,
        address: n.address,
        labels: n.labels as Record<string, string>,
        drivers: n.drivers,
        agentVersion: n.agentVersion,
        loadBalancing: n.loadBalancing,
        lbDriver: n.lbDriver === 'haproxy' || n.lbDriver === 'builtin' ? n.lbDriver : null,
        schedulable: n.schedulable,
        drain: n.draining ? { remaining: n.instances.filter((i) => i.desiredState === 'running').length } : null,
        dedicatedTenant: n.dedicatedTenant,
        state: statuses.get(n.id)?.state ?? 'not_ready',
        connected: statuses.get(n.id)?.connected ?? false,
        lastHeartbeatAt: statuses.get(n.id)?.lastHeartbeatAt ?? null,
        capacity: { cpuMillis: n.cpuMillis, memoryMb: n.memoryMb },
        allocated: {
          cpuMillis: n.instances.reduce((s, i) => s + i.cpuMillis, 0),
          memoryMb: n.instances.reduce((s, i) => s + i.memoryMb, 0),
          instances: n.instances.length,
        },
        usage: { cpuMillis: statuses.get(n.id)?.cpuUsedMillis ?? 0, memoryMb: statuses.get(n.id)?.memoryUsedMb ?? 0 },
        desiredGeneration: n.desiredGeneration,
        appliedGeneration: statuses.get(n.id)?.appliedGeneration ?? 0,
        volume: (n.capabilities as { volume?: TVolumeCapability }).volume ?? null,
        sandbox: (n.capabilities as { sandbox?: TSandboxCapability }).sandbox ?? null,
        containers: (n.capabilities as { containers?: TContainerCapability }).containers ?? null,
      }))
    },

    /** Cordon: no new placements. Uncordon also ends a drain. */
    /** What runs on one node, across tenants (operators only). */
    async instancesOn(actor: Actor, nodeId: string): Promise<TNodeInstance[]> {
      requireOperator(actor)
      const rows = await db.instance.findMany({
        where: { nodeId, releasedAt: null },
        orderBy: [{ tenantId: 'asc' }, { appId: 'asc' }, { ordinal: 'asc' }],
        select: {
          id: true,
          ordinal: true,
          desiredState: true,
          hostPorts: true,
          cpuMillis: true,
          memoryMb: true,
          tenant: { select: { id: true, slug: true } },
          app: { select: { id: true, name: true, volumes: true } },
        },
      })
      const [statuses, moves] = await Promise.all([
        hot.statusesOf(rows.map((r) => r.id)),
        db.move.findMany({ where: { instanceId: { in: rows.map((r) => r.id) }, state: { in: ['running', 'compensating'] } }, select: { id: true, instanceId: true, step: true } }),
      ])
      return rows.map(({ app, ...r }) => {
        const st = statuses.get(r.id)
        const mine = st && st.nodeId === nodeId ? st : undefined
        const m = moves.find((x) => x.instanceId === r.id)
        return {
          ...r,
          app: { id: app.id, name: app.name },
          state: mine?.state ?? 'pending',
          restarts: mine?.restarts ?? 0,
          lastExit: mine ? lastExitOf(mine) : null,
          volumes: (app.volumes as { name: string; driver: 'local' | 'shared' }[]).map((v) => ({ name: v.name, driver: v.driver })),
          moving: m ? { moveId: m.id, step: m.step } : null,
        }
      })
    },

    async setSchedulable(actor: Actor, nodeId: string, schedulable: boolean): Promise<void> {
      requireOperator(actor)
      const n = await db.node.update({ where: { id: nodeId }, data: { schedulable, ...(schedulable && { draining: false }) }, select: { name: true } }).catch(() => {
        throw new CoreError('NOT_FOUND', 'Node not found')
      })
      await hot.recordEvent({ kind: 'audit', type: schedulable ? 'node.uncordoned' : 'node.cordoned', actorId: actor.userId, subject: `node/${n.name}`, message: `Node ${n.name} ${schedulable ? 'uncordoned' : 'cordoned'}` })
      bus.publish({ kind: 'fleet', what: 'node', nodeId })
    },

    /** Drain: cordon, then the drain controller moves instances off, max-unavailable per app. */
    async drain(actor: Actor, nodeId: string): Promise<void> {
      requireOperator(actor)
      const n = await db.node.update({ where: { id: nodeId }, data: { schedulable: false, draining: true }, select: { name: true } }).catch(() => {
        throw new CoreError('NOT_FOUND', 'Node not found')
      })
      await hot.recordEvent({ kind: 'audit', type: 'node.drain', actorId: actor.userId, subject: `node/${n.name}`, message: `Drain of ${n.name} started` })
      bus.publish({ kind: 'fleet', what: 'node', nodeId })
      bus.publish({ kind: 'drain', nodeId })
    },

    async setDedicatedTenant(actor: Actor, nodeId: string, tenantId: string | null): Promise<void> {
      requireOperator(actor)
      if (tenantId && !(await db.tenant.findUnique({ where: { id: tenantId }, select: { id: true } }))) throw new CoreError('NOT_FOUND', 'Tenant not found')
      const n = await db.node.update({ where: { id: nodeId }, data: { dedicatedTenantId: tenantId }, select: { name: true } }).catch(() => {
        throw new CoreError('NOT_FOUND', 'Node not found')
      })
      if (tenantId) await hot.recordEvent(auditEvent(actor, { tenantId, type: 'node.dedicated', subject: `node/${n.name}`, message: `Node ${n.name} dedicated to this tenant` }))
      bus.publish({ kind: 'fleet', what: 'node', nodeId })
    },

    async createJoinToken(actor: Actor, input: { description: string; ttlHours: number; uses: number }): Promise<{ token: string; joinToken: TJoinToken }> {
      requireOperator(actor)
      requireSignedIn(actor)
      const { token, prefix, tokenHash } = mintToken('jt')
      const t = await db.joinToken.create({
        data: {
          description: input.description,
          prefix,
          tokenHash,
          maxUses: input.uses,
          expiresAt: new Date(clock.now().getTime() + input.ttlHours * 3_600_000),
          createdById: actor.userId,
        },
        select: joinTokenSelect,
      })
      await hot.recordEvent({
        kind: 'audit',
        type: 'jointoken.created',
        actorId: actor.userId,
        subject: `jointoken/${t.prefix}`,
        message: `Join token "${t.description}" created by ${actor.email} (${t.maxUses} ${t.maxUses === 1 ? 'use' : 'uses'}, ${input.ttlHours} h)`,
        data: { tokenId: t.id, maxUses: t.maxUses },
      })
      bus.publish({ kind: 'fleet', what: 'jointoken' })
      return { token, joinToken: toJoinToken(t, actor.email) }
    },

    async listJoinTokens(actor: Actor): Promise<TJoinToken[]> {
      requireOperator(actor)
      const rows = await db.joinToken.findMany({ orderBy: { createdAt: 'desc' }, select: joinTokenSelect })
      const creators = await db.user.findMany({ where: { id: { in: [...new Set(rows.flatMap((t) => t.createdById ?? []))] } }, select: { id: true, email: true } })
      const emails = new Map(creators.map((u) => [u.id, u.email]))
      return rows.map((t) => toJoinToken(t, t.createdById ? (emails.get(t.createdById) ?? null) : null))
    },

    /**
     * Re-key: the node's current credential stops working now (its agent is disconnected),
     * and a one-use token bound to this node lets an agent take it over with a new
     * credential: for a reinstalled node that lost its credential, or one that leaked.
     */
    async rekey(actor: Actor, nodeId: string, input: { ttlHours: number }): Promise<{ token: string; joinToken: TJoinToken }> {
      requireOperator(actor)
      const node = await db.node.findUnique({ where: { id: nodeId }, select: { id: true, name: true } })
      if (!node) throw new CoreError('NOT_FOUND', 'Node not found')
      const { token, prefix, tokenHash } = mintToken('jt')
      const t = await db.$transaction(async (tx) => {
        await tx.node.update({ where: { id: node.id }, data: { credentialHash: hashToken(newToken('revoked')) } })
        // One pending re-key per node: an earlier unused one is void.
        await tx.joinToken.updateMany({ where: { rekeyNodeId: node.id, revokedAt: null }, data: { revokedAt: clock.now() } })
        return tx.joinToken.create({
          data: { description: `re-key ${node.name}`, prefix, tokenHash, maxUses: 1, rekeyNodeId: node.id, expiresAt: new Date(clock.now().getTime() + input.ttlHours * 3_600_000), createdById: actor.userId },
          select: joinTokenSelect,
        })
      })
      // Whichever connection holds the node now is fenced, on this BFF or another.
      await leases.revoke(node.id)
      await hot.recordEvent({
        kind: 'audit',
        type: 'node.rekeyed',
        actorId: actor.userId,
        subject: `node/${node.name}`,
        message: `Node ${node.name} re-keyed by ${actor.email}: its credential is revoked; re-key token ${t.prefix}… valid ${input.ttlHours} h`,
        data: { nodeId: node.id, tokenId: t.id },
      })
      bus.publish({ kind: 'node-revoked', nodeId: node.id })
      bus.publish({ kind: 'fleet', what: 'jointoken' })
      return { token, joinToken: toJoinToken(t, actor.email) }
    },

    async revokeJoinToken(actor: Actor, id: string): Promise<void> {
      requireOperator(actor)
      const { count } = await db.joinToken.updateMany({ where: { id, revokedAt: null }, data: { revokedAt: clock.now() } })
      if (!count) throw new CoreError('NOT_FOUND', 'Join token not found or already revoked')
      bus.publish({ kind: 'fleet', what: 'jointoken' })
    },
  }
}
export type NodeService = ReturnType<typeof createNodeService>
