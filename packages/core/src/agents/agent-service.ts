import type { Clock } from '../clock'
import type { Prisma } from '../generated/prisma/client'
import { CoreError } from '../errors'
import type { TDesired, TDesiredLb, THello, TInstanceReport, TLbReport, TLbServerStat, TVolumeUsage } from '../protocol'
import type { ChangeBus } from '../store/change-bus'
import type { Db } from '../store/db'
import { newlyOverSize } from '../volumes/size'
import { TERMINAL_STATES, type HotStore, type NewEvent } from '../store/hot-store'
import type { NodeLeases } from '../store/node-leases'
import type { AuditTrail } from '../audit/trail'
import { createBatchLoader } from '../store/batch-load'
import { loadDesired } from './desired'
import { createHelloAcceptor, type THelloOutcome } from './hello'

/** States an agent reports the moment they are reached: something waits on them. */
const SETTLED: ReadonlySet<string> = new Set(['running', ...TERMINAL_STATES])

export interface AgentServiceDeps {
  db: Db
  hot: HotStore
  leases: NodeLeases
  bus: ChangeBus
  clock: Clock
  /** Joins are audited (agent door). */
  audit: AuditTrail
  /** A node's connection that has not heartbeated for this long no longer holds the node. */
  sessionStaleMs: number
  /** Told of every recorded heartbeat; the lease is answered without waiting for it. */
  onHeartbeat?(nodeId: string, hb: { cpuUsedMillis: number; memoryUsedMb: number }): void
  /** Load-balancing nodes: what they serve, and what they report about it. */
  loadBalancers: {
    desiredFor(nodeId: string): Promise<TDesiredLb[]>
    report(nodeId: string, generation: number, reports: TLbReport[]): Promise<void>
    recordStats(nodeId: string, servers: readonly TLbServerStat[]): Promise<void>
  }
}

const assignedSelect = { id: true, nodeId: true, tenantId: true, appId: true, desiredState: true } satisfies Prisma.InstanceSelect
type Assigned = Prisma.InstanceGetPayload<{ select: typeof assignedSelect }>

/**
 * What the agent gateway needs from core: authenticate a node, record its heartbeats
 * and observed instances, and compute the full desired state for it.
 * Every write is scoped to the calling node: an agent can only report its own instances.
 */
export function createAgentService({ db, hot, leases, bus, clock, audit, sessionStaleMs, onHeartbeat, loadBalancers }: AgentServiceDeps) {
  // Heartbeats, connects and disconnects change only usage, "last seen" and "connected":
  // consoles hear of them once a second, not per node.
  let heartbeatHint: (() => void) | null = null
  const hintHeartbeats = () => {
    heartbeatHint ??= clock.setTimer(() => {
      heartbeatHint = null
      bus.publish({ kind: 'fleet', what: 'heartbeat' })
    }, 1_000)
  }

  const acceptHello = createHelloAcceptor({ db, hot, leases, clock, audit })
  // Every agent sends a full report after its welcome: a fleet coming back reads its nodes' instances in batches.
  const assignedTo = createBatchLoader<string, Assigned[]>({
    loadMany: async (nodeIds) => {
      const out = new Map(nodeIds.map((id) => [id, [] as Assigned[]]))
      for (const i of await db.instance.findMany({ where: { nodeId: { in: nodeIds } }, select: assignedSelect })) out.get(i.nodeId!)?.push(i)
      return out
    },
    maxBatch: 500,
    concurrency: 2,
  })

  return {
    /** Authenticates a hello and claims the node's session for the connection `sessionId`. */
    async hello(msg: THello, sessionId: string, remote: string): Promise<THelloOutcome> {
      const res = await acceptHello(msg, { sessionId, staleMs: sessionStaleMs, remote })
      if (!res.ok) return res
      // The scheduler refreshes a node it hears of by id; a plain reconnect changes nothing it reads.
      if (res.changed) bus.publish({ kind: 'fleet', what: 'node', nodeId: res.nodeId })
      if (res.credential) bus.publish({ kind: 'fleet', what: 'jointoken' })
      hintHeartbeats()
      return res
    },

    /**
     * Group-committed with other nodes' heartbeats; a NotReady node that beats again is
     * revived by the flush. 'fenced': another connection holds the node now.
     */
    async heartbeat(nodeId: string, sessionId: string, hb: { cpuUsedMillis: number; memoryUsedMb: number; appliedGeneration: number }): Promise<'ok' | 'fenced'> {
      const landed = await leases.heartbeat({ nodeId, sessionId, ...hb })
      if (landed === 'fenced') return landed
      onHeartbeat?.(nodeId, hb)
      hintHeartbeats()
      return landed
    },

    async disconnected(nodeId: string, sessionId: string) {
      await leases.release(nodeId, sessionId)
      hintHeartbeats()
    },

    /**
     * Records observed states (and, from load-balancing nodes, the load balancers served).
     * Reports for instances not assigned to this node are ignored.
     */
    async report(nodeId: string, full: boolean, reports: TInstanceReport[], lb?: { generation: number; reports: TLbReport[] }): Promise<void> {
      if (lb) await loadBalancers.report(nodeId, lb.generation, lb.reports)
      const assigned = await assignedTo.load(nodeId)
      const mine = new Map(assigned.map((i) => [i.id, i]))
      const known = await hot.statusesOf(reports.filter((r) => mine.has(r.instanceId)).map((r) => r.instanceId))
      const tenants = new Set<string>()
      const apps = new Set<string>()
      /** Apps whose instances changed state or readiness: load balancers and rollouts follow. */
      const backends = new Set<string>()
      const rows = []
      /** Something the store does not know yet: a move, rollout or console waits on it, so no coalescing delay. */
      let news = false
      /** Exits and failures, kept as tenant events: the status only shows the latest state. */
      const exits: NewEvent[] = []
      for (const r of reports) {
        const inst = mine.get(r.instanceId)
        if (!inst) continue
        rows.push({ ...r, tenantId: inst.tenantId, nodeId })
        tenants.add(inst.tenantId)
        if (TERMINAL_STATES.has(r.state)) apps.add(inst.appId)
        const before = known.get(r.instanceId)
        if ((r.state === 'exited' || r.state === 'failed') && r.message && (before?.state !== r.state || before.restarts !== r.restarts))
          exits.push({ tenantId: inst.tenantId, kind: 'system', type: `instance.${r.state}`, subject: `instance/${r.instanceId}`, message: r.message, data: { appId: inst.appId, nodeId, exitCode: r.exitCode, restarts: r.restarts } })
        const ready = r.health?.ready ?? null
        if (!before || before.nodeId !== nodeId || before.state !== r.state || before.ready !== ready || before.restarts !== r.restarts) {
          news = true
          apps.add(inst.appId)
          backends.add(inst.appId)
        }
      }
      if (full) {
        // Assigned and stopped, but unknown to the agent: it has nothing left to stop.
        const reported = new Set(reports.map((r) => r.instanceId))
        const missing = assigned.filter((i) => !reported.has(i.id) && i.desiredState === 'stopped')
        const known = await hot.statusesOf(missing.map((i) => i.id))
        for (const inst of missing) {
          const st = known.get(inst.id)
          if (st && st.nodeId === nodeId && st.state === 'stopped') continue
          rows.push({ instanceId: inst.id, tenantId: inst.tenantId, nodeId, state: 'stopped' as const, pid: null, restarts: st?.restarts ?? 0, startedAt: null, exitCode: null, message: 'not running on the node', generation: st?.generation ?? 0 })
          news = true
          tenants.add(inst.tenantId)
          apps.add(inst.appId)
        }
      }
      // An agent sends a state reached (running, stopped…) at once: a move step waits on it, so it is not held back here either.
      // Nor is a full report that changes something (an agent sends one after each desired state): the agent's next
      // frames, a move's 'running' or 'stopped' among them, wait behind it. A fleet restating its states still coalesces.
      await hot.reportStatuses(rows, { now: news || (!full && rows.some((r) => SETTLED.has(r.state))) })
      await hot.recordEvents(exits)
      // Running again where it waited (a lost node that returned): nothing to explain any more.
      const running = rows.filter((r) => r.state === 'running').map((r) => r.instanceId)
      if (running.length) await db.instance.updateMany({ where: { id: { in: running }, nodeId, pendingReason: { not: null } }, data: { pendingReason: null } })
      for (const t of tenants) bus.publish({ kind: 'tenant', tenantId: t, what: 'instances' })
      if (rows.length) bus.publish({ kind: 'fleet', what: 'instances', nodeId })
      // A stopped instance may let its app finish scaling down or deleting; a ready one, a rollout go on.
      for (const a of apps) bus.publish({ kind: 'app', appId: a })
      for (const a of backends) bus.publish({ kind: 'lb-backends', appId: a })
    },

    /** Space used by the volumes this node holds. */
    /** A load-balancing node's per-server traffic. */
    lbStats: (nodeId: string, servers: readonly TLbServerStat[]): Promise<void> => loadBalancers.recordStats(nodeId, servers),

    async volumeUsage(nodeId: string, usage: TVolumeUsage['volumes']): Promise<void> {
      const known = await db.volume.findMany({ where: { id: { in: usage.map((u) => u.volumeId) }, nodeId }, select: { id: true, tenantId: true, name: true, sizeMb: true, ordinal: true, app: { select: { name: true } } } })
      const mine = new Set(known.map((v) => v.id))
      const before = new Map([...(await hot.volumeUsage([...mine]))].map(([id, v]) => [id, Number(v.usedBytes)]))
      const now = new Map(usage.filter((u) => mine.has(u.volumeId)).map((u) => [u.volumeId, u.usedBytes]))
      await hot.recordVolumeUsage(nodeId, usage.filter((u) => mine.has(u.volumeId)))
      // Sizes are not enforced (volumes/size.ts): going over is an event the tenant sees, once per crossing.
      for (const v of newlyOverSize(known, before, now))
        await hot.recordEvent({ tenantId: v.tenantId, kind: 'system', type: 'volume.over_size', subject: v.app ? `app/${v.app.name}` : `volume/${v.name}`, message: `Volume ${v.name} of ${v.app?.name ?? 'an app'}-${v.ordinal} uses ${(now.get(v.id)! / 1048576).toFixed(1)} MiB, over its ${v.sizeMb} MiB (sizes are measured, not enforced)`, data: { volumeId: v.id, usedBytes: now.get(v.id), sizeMb: v.sizeMb } })
      for (const t of new Set(known.map((v) => v.tenantId))) bus.publish({ kind: 'tenant', tenantId: t, what: 'instances' })
    },

    /** The current desired-state generation of these nodes. */
    async generations(nodeIds: string[]): Promise<Map<string, number>> {
      const rows = await db.node.findMany({ where: { id: { in: nodeIds } }, select: { id: true, desiredGeneration: true } })
      return new Map(rows.map((r) => [r.id, r.desiredGeneration]))
    },

    /** The full desired state of one node (NOT_FOUND: the node was deleted). */
    async desiredFor(nodeId: string): Promise<TDesired> {
      const d = (await loadDesired({ db, hot, loadBalancers }, [nodeId])).get(nodeId)
      if (!d) throw new CoreError('NOT_FOUND', 'Node not found')
      return d
    },

    /** The same for many nodes in a few queries; nodes that no longer exist are missing from the map. */
    desiredForMany: (nodeIds: readonly string[]) => loadDesired({ db, hot, loadBalancers }, nodeIds),
  }
}
export type AgentService = ReturnType<typeof createAgentService>
