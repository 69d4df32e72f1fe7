import { z } from 'zod'
import type { Actor } from '../auth/actor'
import { requireOperator, requireRole, roleIn } from '../auth/actor'
import { auditEvent } from '../auth/audit'
import { CoreError } from '../errors'
import type { Prisma } from '../generated/prisma/client'
import type { TCreateTenantInput, TQuotas } from '../schemas/tenant'
import { ZMemberRole } from '../schemas/tenant'
import type { ChangeBus } from '../store/change-bus'
import type { Db } from '../store/db'
import type { HotStore } from '../store/hot-store'
import type { NetworkService } from './networks'
import { allocateRunAsUid, type TUidRange } from './tenant-uids'

const tenantSelect = {
  id: true,
  slug: true,
  name: true,
  quotaCpuMillis: true,
  quotaMemoryMb: true,
  quotaInstances: true,
  quotaApps: true,
  quotaNetworks: true,
  placementStrategy: true,
  trusted: true,
  createdAt: true,
} satisfies Prisma.TenantSelect

export const ZTenant = z.object({
  id: z.string(),
  slug: z.string(),
  name: z.string(),
  quotas: z.object({ cpuMillis: z.number(), memoryMb: z.number(), instances: z.number(), apps: z.number(), networks: z.number() }),
  placementStrategy: z.enum(['spread', 'binpack']),
  /** An operator trusts it: its process apps may also run on nodes that cannot sandbox them. */
  trusted: z.boolean(),
  createdAt: z.date(),
  /** The caller's role; operators who are not members read as viewer. */
  role: ZMemberRole.nullable(),
})
export type TTenant = z.infer<typeof ZTenant>

export const ZTenantUsage = z.object({
  used: z.object({ cpuMillis: z.number(), memoryMb: z.number(), instances: z.number(), apps: z.number() }),
  quotas: ZTenant.shape.quotas,
})
export type TTenantUsage = z.infer<typeof ZTenantUsage>

type TenantRow = Prisma.TenantGetPayload<{ select: typeof tenantSelect }>
const toTenant = (t: TenantRow, actor: Actor): TTenant => ({
  id: t.id,
  slug: t.slug,
  name: t.name,
  createdAt: t.createdAt,
  placementStrategy: t.placementStrategy,
  trusted: t.trusted,
  quotas: { cpuMillis: t.quotaCpuMillis, memoryMb: t.quotaMemoryMb, instances: t.quotaInstances, apps: t.quotaApps, networks: t.quotaNetworks },
  role: roleIn(actor, t.id),
})

const quotaData = (q: Partial<TQuotas>) => ({
  ...(q.cpuMillis !== undefined && { quotaCpuMillis: q.cpuMillis }),
  ...(q.memoryMb !== undefined && { quotaMemoryMb: q.memoryMb }),
  ...(q.instances !== undefined && { quotaInstances: q.instances }),
  ...(q.apps !== undefined && { quotaApps: q.apps }),
  ...(q.networks !== undefined && { quotaNetworks: q.networks }),
})

/** Usage counted against quotas: desired replicas of apps that are not being deleted. */
export async function tenantUsage(db: Db | Prisma.TransactionClient, tenantId: string) {
  const apps = await db.app.findMany({ where: { tenantId, deletedAt: null }, select: { replicas: true, cpuMillis: true, memoryMb: true } })
  return {
    cpuMillis: apps.reduce((s, a) => s + a.replicas * a.cpuMillis, 0),
    memoryMb: apps.reduce((s, a) => s + a.replicas * a.memoryMb, 0),
    instances: apps.reduce((s, a) => s + a.replicas, 0),
    apps: apps.length,
  }
}

export function createTenantService({
  db,
  hot,
  bus,
  networks,
  uids,
  trustFirstTenant = false,
}: {
  db: Db
  hot: HotStore
  bus: ChangeBus
  networks: Pick<NetworkService, 'createDefault'>
  uids: TUidRange
  /** The first tenant of a fresh platform is trusted (`npm start` on a machine that cannot sandbox). */
  trustFirstTenant?: boolean
}) {
  /** Two creations at once may pick the same uid: the unique index refuses one, which tries again. */
  async function createRow(input: TCreateTenantInput, attempt = 0): Promise<TenantRow> {
    try {
      return await db.$transaction(async (tx) => {
        const t = await tx.tenant.create({
          data: {
            slug: input.slug,
            name: input.name,
            runAsUid: await allocateRunAsUid(tx, uids),
            trusted: trustFirstTenant && (await tx.tenant.count()) === 0,
            ...quotaData(input.quotas ?? {}),
            ...(input.placementStrategy && { placementStrategy: input.placementStrategy }),
          },
          select: tenantSelect,
        })
        // Every tenant starts with its default network.
        await networks.createDefault(tx, t.id)
        return t
      })
    } catch (err) {
      if ((err as { code?: string }).code !== 'P2002') throw err
      if (await db.tenant.findUnique({ where: { slug: input.slug }, select: { id: true } })) throw new CoreError('CONFLICT', `A tenant with slug "${input.slug}" already exists`)
      if (attempt >= 5) throw err
      return createRow(input, attempt + 1)
    }
  }

  return {
    async list(actor: Actor): Promise<TTenant[]> {
      const rows = await db.tenant.findMany({
        where: actor.operator ? {} : { id: { in: [...actor.memberships.keys()] } },
        orderBy: { slug: 'asc' },
        select: tenantSelect,
      })
      return rows.map((t) => toTenant(t, actor))
    },

    async get(actor: Actor, tenantId: string): Promise<TTenant> {
      requireRole(actor, tenantId, 'viewer')
      const t = await db.tenant.findUnique({ where: { id: tenantId }, select: tenantSelect })
      if (!t) throw new CoreError('NOT_FOUND', 'Tenant not found')
      return toTenant(t, actor)
    },

    async create(actor: Actor, input: TCreateTenantInput): Promise<TTenant> {
      requireOperator(actor)
      const exists = await db.tenant.findUnique({ where: { slug: input.slug }, select: { id: true } })
      if (exists) throw new CoreError('CONFLICT', `A tenant with slug "${input.slug}" already exists`)
      const t = await createRow(input)
      await hot.recordEvent(
        auditEvent(actor, {
          tenantId: t.id,
          type: 'tenant.created',
          subject: `tenant/${t.slug}`,
          message: `Tenant ${t.name} created${t.trusted ? ' (trusted: the first tenant of a one-machine start, ALVEARY_TRUST_FIRST_TENANT)' : ''}`,
          ...(t.trusted && { data: { trusted: true } }),
        }),
      )
      bus.publish({ kind: 'tenants', tenantId: t.id })
      return toTenant(t, actor)
    },

    async setQuotas(actor: Actor, tenantId: string, quotas: Partial<TQuotas>): Promise<TTenant> {
      requireOperator(actor)
      const t = await db.tenant.update({ where: { id: tenantId }, data: quotaData(quotas), select: tenantSelect }).catch((err: { code?: string }) => {
        // Only "no such row" is a missing tenant; a database failure stays one.
        throw err.code === 'P2025' ? new CoreError('NOT_FOUND', 'Tenant not found') : err
      })
      await hot.recordEvent(auditEvent(actor, { tenantId, type: 'tenant.quotas', subject: `tenant/${t.slug}`, message: 'Quotas changed', data: quotas }))
      bus.publish({ kind: 'tenant', tenantId, what: 'tenant' })
      return toTenant(t, actor)
    },

    /** Trust is the operator's call, audited: a trusted tenant's code may run unconfined on unsandboxed nodes. */
    async setTrusted(actor: Actor, tenantId: string, trusted: boolean): Promise<TTenant> {
      requireOperator(actor)
      const t = await db.tenant.update({ where: { id: tenantId }, data: { trusted }, select: tenantSelect }).catch((err: { code?: string }) => {
        throw err.code === 'P2025' ? new CoreError('NOT_FOUND', 'Tenant not found') : err
      })
      await hot.recordEvent(
        auditEvent(actor, {
          tenantId,
          type: 'tenant.trusted',
          subject: `tenant/${t.slug}`,
          message: trusted ? 'Trusted: its process apps may run unsandboxed on nodes that cannot sandbox them' : 'No longer trusted: its process apps run sandboxed only',
          data: { trusted },
        }),
      )
      bus.publish({ kind: 'tenant', tenantId, what: 'tenant' })
      return toTenant(t, actor)
    },

    async usage(actor: Actor, tenantId: string): Promise<TTenantUsage> {
      const t = await this.get(actor, tenantId)
      return { used: await tenantUsage(db, tenantId), quotas: t.quotas }
    },
  }
}
export type TenantService = ReturnType<typeof createTenantService>
