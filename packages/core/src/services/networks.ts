import { z } from 'zod'
import type { Actor } from '../auth/actor'
import { requireRole } from '../auth/actor'
import { auditEvent } from '../auth/audit'
import { CoreError } from '../errors'
import type { Prisma } from '../generated/prisma/client'
import {
  allocateIp,
  allocateVxlanId,
  assignableCount,
  cidrProblem,
  formatCidr,
  formatIp,
  gatewayOf,
  macOf,
  nextDefaultCidr,
  overlaps,
  parseCidr,
  parseIp,
  type Cidr,
} from '../networks/ipam'
import { ZName } from '../schemas/app'
import type { ChangeBus } from '../store/change-bus'
import type { Db, Tx } from '../store/db'
import type { HotStore } from '../store/hot-store'

export const ZNetworkSettings = z.object({
  /** Where default networks' CIDRs come from (distinct blocks while the pool lasts). */
  pool: z.string().refine((s) => parseCidr(s) !== null, 'not a CIDR').default('100.64.0.0/10'),
  /** Size of a default network. */
  defaultPrefix: z.number().int().min(16).max(29).default(24),
})
export type TNetworkSettings = z.infer<typeof ZNetworkSettings>

export const ZCreateNetworkInput = z.object({
  name: ZName,
  /** Omitted: the next free block of the platform's pool. */
  cidr: z.string().max(18).optional(),
})
export type TCreateNetworkInput = z.infer<typeof ZCreateNetworkInput>

export const ZNetwork = z.object({
  id: z.string(),
  name: z.string(),
  cidr: z.string(),
  gateway: z.string(),
  vxlanId: z.number(),
  isDefault: z.boolean(),
  createdAt: z.date(),
  apps: z.number(),
  /** Addresses taken (instances' leases and load-balancing nodes') / still free. */
  used: z.number(),
  free: z.number(),
  /** Nodes running at least one of its instances. */
  nodes: z.array(z.object({ id: z.string(), name: z.string() })),
})
export type TNetwork = z.infer<typeof ZNetwork>

export const ZLease = z.object({
  ip: z.string(),
  mac: z.string(),
  instanceId: z.string(),
  app: z.object({ id: z.string(), name: z.string() }),
  ordinal: z.number(),
  node: z.object({ id: z.string(), name: z.string() }).nullable(),
  createdAt: z.date(),
})
/** A load-balancing node's own address on the network (it joined it to reach the instances by IP). */
export const ZLbMember = z.object({ ip: z.string(), mac: z.string(), node: z.object({ id: z.string(), name: z.string() }), createdAt: z.date() })
export const ZNetworkDetail = ZNetwork.extend({ leases: z.array(ZLease), lbAddresses: z.array(ZLbMember) })
export type TNetworkDetail = z.infer<typeof ZNetworkDetail>

const networkSelect = {
  id: true,
  name: true,
  cidr: true,
  vxlanId: true,
  isDefault: true,
  createdAt: true,
  _count: { select: { apps: true, leases: true, lbAddresses: true } },
} satisfies Prisma.NetworkSelect
type NetworkRow = Prisma.NetworkGetPayload<{ select: typeof networkSelect }>

function toNetwork(n: NetworkRow, nodes: { id: string; name: string }[]): TNetwork {
  const cidr = parseCidr(n.cidr)!
  return {
    id: n.id,
    name: n.name,
    cidr: n.cidr,
    gateway: formatIp(gatewayOf(cidr)),
    vxlanId: n.vxlanId,
    isDefault: n.isDefault,
    createdAt: n.createdAt,
    apps: n._count.apps,
    // Load-balancing nodes that joined the network hold an address each.
    used: n._count.leases + n._count.lbAddresses,
    free: Math.max(0, assignableCount(cidr) - n._count.leases - n._count.lbAddresses),
    nodes,
  }
}

/** Serializes VXLAN id choice across the platform (ids are global; the unique index is the backstop). */
const VXLAN_LOCK = 0x616c766e // "alvn"

async function insertNetwork(tx: Tx, tenantId: string, data: { name: string; cidr: string; isDefault: boolean }) {
  await tx.$executeRaw`SELECT pg_advisory_xact_lock(${VXLAN_LOCK})`
  const used = await tx.network.findMany({ select: { vxlanId: true } })
  const vxlanId = allocateVxlanId(new Set(used.map((u) => u.vxlanId)))
  if (vxlanId === null) throw new CoreError('CONFLICT', 'The platform has no VXLAN ids left for new networks')
  return tx.network.create({ data: { tenantId, vxlanId, ...data }, select: networkSelect })
}

/**
 * Tenant networks and their address leases. Leases are allocated with the instance (same
 * transaction) and deleted with it, so an instance keeps its IP across restarts and moves.
 */
export function createNetworkService({ db, hot, bus, settings }: { db: Db; hot: HotStore; bus: ChangeBus; settings: TNetworkSettings }) {
  const pool = parseCidr(settings.pool)!
  const changed = (tenantId: string, id?: string) => bus.publish({ kind: 'tenant', tenantId, what: 'network', ...(id && { id }) })

  async function nodesOf(networkIds: string[]): Promise<Map<string, { id: string; name: string }[]>> {
    const rows = await db.ipLease.findMany({
      where: { networkId: { in: networkIds }, instance: { nodeId: { not: null }, releasedAt: null } },
      select: { networkId: true, instance: { select: { node: { select: { id: true, name: true } } } } },
    })
    const out = new Map<string, Map<string, { id: string; name: string }>>()
    for (const r of rows) {
      const node = r.instance.node
      if (!node) continue
      const m = out.get(r.networkId) ?? new Map()
      m.set(node.id, node)
      out.set(r.networkId, m)
    }
    return new Map([...out].map(([k, m]) => [k, [...m.values()].sort((a, b) => a.name.localeCompare(b.name))]))
  }

  async function findNetwork(tenantId: string, networkId: string) {
    const n = await db.network.findFirst({ where: { id: networkId, tenantId }, select: networkSelect })
    if (!n) throw new CoreError('NOT_FOUND', 'Network not found')
    return n
  }

  return {
    /** The tenant's default network, created with the tenant (in its transaction). */
    async createDefault(tx: Tx, tenantId: string): Promise<void> {
      const defaults = await tx.network.findMany({ where: { isDefault: true }, select: { cidr: true } })
      const cidr = nextDefaultCidr(pool, settings.defaultPrefix, defaults.map((d) => parseCidr(d.cidr)!))
      await insertNetwork(tx, tenantId, { name: 'default', cidr: formatCidr(cidr), isDefault: true })
    },

    async list(actor: Actor, tenantId: string): Promise<TNetwork[]> {
      requireRole(actor, tenantId, 'viewer')
      const rows = await db.network.findMany({ where: { tenantId }, orderBy: [{ isDefault: 'desc' }, { name: 'asc' }], select: networkSelect })
      const nodes = await nodesOf(rows.map((r) => r.id))
      return rows.map((r) => toNetwork(r, nodes.get(r.id) ?? []))
    },

    async get(actor: Actor, tenantId: string, networkId: string): Promise<TNetworkDetail> {
      requireRole(actor, tenantId, 'viewer')
      const n = await findNetwork(tenantId, networkId)
      const leases = await db.ipLease.findMany({
        where: { networkId },
        select: {
          ip: true,
          instanceId: true,
          createdAt: true,
          instance: { select: { ordinal: true, releasedAt: true, app: { select: { id: true, name: true } }, node: { select: { id: true, name: true } } } },
        },
      })
      const nodes = await nodesOf([networkId])
      const lbs = await db.lbAddress.findMany({ where: { networkId }, select: { ip: true, createdAt: true, node: { select: { id: true, name: true } } } })
      return {
        ...toNetwork(n, nodes.get(networkId) ?? []),
        lbAddresses: lbs.map((a) => ({ ip: a.ip, mac: macOf(parseIp(a.ip)!), node: a.node, createdAt: a.createdAt })).sort((a, b) => parseIp(a.ip)! - parseIp(b.ip)!),
        leases: leases
          .map((l) => ({
            ip: l.ip,
            mac: macOf(parseIp(l.ip)!),
            instanceId: l.instanceId,
            app: l.instance.app,
            ordinal: l.instance.ordinal,
            node: l.instance.releasedAt ? null : l.instance.node,
            createdAt: l.createdAt,
          }))
          .sort((a, b) => parseIp(a.ip)! - parseIp(b.ip)!),
      }
    },

    async create(actor: Actor, tenantId: string, input: TCreateNetworkInput): Promise<TNetwork> {
      requireRole(actor, tenantId, 'admin')
      if (input.cidr !== undefined) {
        const problem = cidrProblem(input.cidr)
        if (problem) throw new CoreError('BAD_REQUEST', `CIDR ${input.cidr}: ${problem}`)
      }
      const n = await db.$transaction(async (tx) => {
        await tx.$queryRaw`SELECT id FROM "Tenant" WHERE id = ${tenantId}::uuid FOR UPDATE`
        const t = await tx.tenant.findUnique({ where: { id: tenantId }, select: { quotaNetworks: true } })
        if (!t) throw new CoreError('NOT_FOUND', 'Tenant not found')
        const mine = await tx.network.findMany({ where: { tenantId }, select: { name: true, cidr: true } })
        if (mine.length >= t.quotaNetworks) throw new CoreError('QUOTA_EXCEEDED', `Quota exceeded (networks: ${mine.length} of ${t.quotaNetworks} used)`)
        if (mine.some((m) => m.name === input.name)) throw new CoreError('CONFLICT', `A network named "${input.name}" already exists`)
        const taken = mine.map((m) => parseCidr(m.cidr)!)
        let cidr: Cidr
        if (input.cidr !== undefined) {
          cidr = parseCidr(input.cidr)!
          const clash = mine.find((m) => overlaps(parseCidr(m.cidr)!, cidr))
          // Overlap across tenants is fine (separate L2 domains); within one tenant it would make routing ambiguous for its apps.
          if (clash) throw new CoreError('CONFLICT', `${input.cidr} overlaps network "${clash.name}" (${clash.cidr}) of this tenant`)
        } else {
          const all = await tx.network.findMany({ select: { cidr: true } })
          cidr = nextDefaultCidr(pool, settings.defaultPrefix, all.map((a) => parseCidr(a.cidr)!))
          if (taken.some((c) => overlaps(c, cidr))) throw new CoreError('CONFLICT', 'No free block left in the pool for this tenant: give a CIDR')
        }
        return insertNetwork(tx, tenantId, { name: input.name, cidr: formatCidr(cidr), isDefault: false })
      })
      await hot.recordEvent(auditEvent(actor, { tenantId, type: 'network.created', subject: `network/${n.name}`, message: `Network ${n.name} (${n.cidr}, VXLAN ${n.vxlanId}) created` }))
      changed(tenantId, n.id)
      return toNetwork(n, [])
    },

    async delete(actor: Actor, tenantId: string, networkId: string): Promise<void> {
      requireRole(actor, tenantId, 'admin')
      const n = await findNetwork(tenantId, networkId)
      if (n.isDefault) throw new CoreError('CONFLICT', 'The default network cannot be deleted')
      if (n._count.apps > 0) throw new CoreError('CONFLICT', `Network ${n.name} is used by ${n._count.apps} app${n._count.apps === 1 ? '' : 's'}; delete or move them first`)
      try {
        await db.network.delete({ where: { id: networkId } })
      } catch (err) {
        // An app attached meanwhile (foreign key): same answer as above.
        if ((err as { code?: string }).code === 'P2003') throw new CoreError('CONFLICT', `Network ${n.name} is used by an app`)
        throw err
      }
      await hot.recordEvent(auditEvent(actor, { tenantId, type: 'network.deleted', subject: `network/${n.name}`, message: `Network ${n.name} deleted` }))
      changed(tenantId)
    },

    /**
     * The network an app joins: the named one, none for null, and for undefined the tenant's
     * default network when some node can run the overlay (else host networking, so a fleet
     * without overlay nodes, e.g. `npm start` without root, keeps placing apps).
     */
    async resolveForApp(tx: Tx, tenantId: string, name: string | null | undefined): Promise<string | null> {
      if (name === null) return null
      if (name === undefined) {
        const overlay = await tx.node.count({ where: { networkMode: 'overlay' } })
        if (!overlay) return null
        const d = await tx.network.findFirst({ where: { tenantId, isDefault: true }, select: { id: true } })
        return d?.id ?? null
      }
      const n = await tx.network.findUnique({ where: { tenantId_name: { tenantId, name } }, select: { id: true } })
      if (!n) throw new CoreError('BAD_REQUEST', `No network named "${name}" in this tenant`)
      return n.id
    },

    /** Refuses more instances than the network has free addresses (admission, like quotas). */
    async admit(tx: Tx, networkId: string, more: number): Promise<void> {
      if (more <= 0) return
      const n = await tx.network.findUnique({ where: { id: networkId }, select: { name: true, cidr: true, _count: { select: { leases: true, lbAddresses: true } } } })
      if (!n) throw new CoreError('NOT_FOUND', 'Network not found')
      const free = assignableCount(parseCidr(n.cidr)!) - n._count.leases - n._count.lbAddresses
      if (more > free) throw new CoreError('QUOTA_EXCEEDED', `Network ${n.name} (${n.cidr}) has ${free} free address${free === 1 ? '' : 'es'}, ${more} asked`)
    },
  }
}
export type NetworkService = ReturnType<typeof createNetworkService>

/**
 * Leases an address to each new instance, lowest free first. The network row is locked so
 * concurrent allocations see each other; the unique (network, ip) index is the backstop.
 */
export async function allocateLeases(tx: Tx, networkId: string, instanceIds: readonly string[]): Promise<void> {
  if (!instanceIds.length) return
  const { n, cidr, used } = await lockAddresses(tx, networkId)
  const data = instanceIds.map((instanceId) => {
    const ip = allocateIp(cidr, used)
    if (ip === null) throw new CoreError('QUOTA_EXCEEDED', `Network ${n.name} (${n.cidr}) has no free address`)
    used.add(ip)
    return { networkId, instanceId, ip: formatIp(ip) }
  })
  await tx.ipLease.createMany({ data })
}

/** Locks the network row and reads the addresses taken by instances and load-balancing nodes. */
async function lockAddresses(tx: Tx, networkId: string) {
  await tx.$queryRaw`SELECT id FROM "Network" WHERE id = ${networkId}::uuid FOR UPDATE`
  const n = await tx.network.findUnique({ where: { id: networkId }, select: { cidr: true, name: true } })
  if (!n) throw new CoreError('NOT_FOUND', 'Network not found')
  const [leases, lbs] = await Promise.all([tx.ipLease.findMany({ where: { networkId }, select: { ip: true } }), tx.lbAddress.findMany({ where: { networkId }, select: { ip: true } })])
  return { n, cidr: parseCidr(n.cidr)!, used: new Set([...leases, ...lbs].map((l) => parseIp(l.ip)!)) }
}

/**
 * Gives a load-balancing node an address on a network it joins (lowest free, like an
 * instance's), unless it has one. False when the network is full: its load balancers then
 * keep reaching the instances by node address and host port.
 */
export async function allocateLbAddress(tx: Tx, networkId: string, nodeId: string): Promise<boolean> {
  const { cidr, used } = await lockAddresses(tx, networkId)
  if (await tx.lbAddress.findUnique({ where: { networkId_nodeId: { networkId, nodeId } }, select: { id: true } })) return true
  const ip = allocateIp(cidr, used)
  if (ip === null) return false
  await tx.lbAddress.create({ data: { networkId, nodeId, ip: formatIp(ip) } })
  return true
}
