import { z } from 'zod'
import { createAgentService } from './agents/agent-service'
import { createCommandQueue } from './agents/commands'
import { createLoginThrottle, ZLoginThrottleConfig } from './auth/login-throttle'
import { createPasswordHasher } from './auth/password-hasher'
import { DEFAULT_HASH_COST } from './auth/secrets'
import type { Clock } from './clock'
import { createDrainController } from './controllers/drain'
import { runAsLeader } from './controllers/leader'
import { createNodeLifecycle } from './controllers/node-lifecycle'
import { createReplicaController } from './controllers/replicas'
import { createMoveController } from './moves/controller'
import { createNodeLossHandler } from './moves/node-loss'
import { createPreemptionController } from './moves/preemption-controller'
import { createMoveService } from './moves/service'
import { createMoveSteps } from './moves/steps'
import { createMoveStore } from './moves/store'
import { createMoveWorld } from './moves/world'
import { createLoadBalancerController } from './controllers/load-balancers'
import { createLbAddressController } from './load-balancers/addresses'
import { createLbNodes } from './load-balancers/nodes'
import { createLoadBalancerService } from './services/load-balancers'
import { runControllers, type Controller } from './controllers/registry'
import { createAuditRetention } from './audit/retention'
import { runScheduling } from './controllers/scheduling'
import { createHeartbeatLag, ignoreObservations, type CoreObserver } from './observe'
import { applyPlan } from './scheduler/apply'
import { loadNodes, loadRequests } from './scheduler/load'
import { createSchedulerSamples } from './scheduler/samples'
import { createScheduler, type Scheduler, type SchedulerStats } from './scheduler/scheduler'
import { createApiTokenService } from './services/api-tokens'
import { createAppService } from './services/apps'
import { createAuthService } from './services/auth'
import { createEventService } from './services/events'
import { createAuditTrail } from './audit/trail'
import { createInvitationService } from './services/invitations'
import { createMemberService } from './services/members'
import { createNetworkService, ZNetworkSettings } from './services/networks'
import { createNetworkPeersController } from './networks/controller'
import { createNodeService } from './services/nodes'
import { createTelemetryService } from './services/telemetry'
import { createTenantService } from './services/tenants'
import { ZUidRange } from './services/tenant-uids'
import type { ChangeBus } from './store/change-bus'
import type { Database } from './store/db'
import { createHotStore } from './store/hot-store'
import { createVolumeCollector } from './volumes/collector'
import { createNodeLeases } from './store/node-leases'

export const ZControlPlaneConfig = z.object({
  sessionTtlHours: z.number().positive().default(24 * 7),
  invitationTtlHours: z.number().positive().default(24 * 7),
  /** Password hashes computed at once, and waiting; more sign-ins at once are told to retry. */
  passwordHashConcurrency: z.number().int().min(1).max(64).default(2),
  passwordHashMaxQueued: z.number().int().min(0).max(10_000).default(16),
  passwordHashCost: z.number().int().min(12).max(20).default(DEFAULT_HASH_COST),
  loginThrottle: ZLoginThrottleConfig.prefault({}),
  heartbeatIntervalMs: z.number().int().positive().default(5_000),
  /** Status reports with nothing new wait this long to share their write with others (group commit). */
  statusFlushMs: z.number().int().min(0).max(600_000).default(50),
  /** A node silent this long becomes NotReady. */
  nodeLeaseMs: z.number().int().positive().default(20_000),
  /** Nodes not heard from since the leader began watching get this long (at least the lease) before NotReady. */
  nodeStartupGraceMs: z.number().int().min(0).default(60_000),
  /** A NotReady node's instances are rescheduled after this long. */
  evictionGraceMs: z.number().int().min(0).default(30_000),
  evictionsPerSecond: z.number().positive().default(50),
  maxUnhealthyFraction: z.number().min(0).max(1).default(0.55),
  resyncIntervalMs: z.number().int().positive().default(10_000),
  stoppedRetentionMs: z.number().int().min(0).default(60_000),
  hostPortMin: z.number().int().min(1024).max(65535).default(20_000),
  hostPortMax: z.number().int().min(1024).max(65535).default(29_999),
  /** Listener ports of load balancers on the load-balancing nodes. */
  lbPortMin: z.number().int().min(1024).max(65535).default(30_000),
  lbPortMax: z.number().int().min(1024).max(65535).default(32_767),
  controllerWorkers: z.number().int().min(1).max(64).default(4),
  /** Nodes stop instances that must not run twice after this long without renewing their lease. */
  selfFenceMs: z.number().int().min(1000).max(3_600_000).default(30_000),
  /** The control plane waits this much longer before it trusts that a silent node did. */
  fenceMarginMs: z.number().int().min(0).max(600_000).default(5_000),
  logLinesPerInstance: z.number().int().min(10).default(2_000),
  metricsRetentionMs: z.number().int().positive().default(3_600_000),
  /** Audit rows older than this are removed by the leader's housekeeping (audit/retention.ts). */
  auditRetentionDays: z.number().int().min(1).max(36_500).default(730),
  /** Tenant networks: the pool default networks come from, and their size. */
  network: ZNetworkSettings.prefault({}),
  /** Where tenants' sandbox uids come from (services/tenant-uids.ts). */
  tenantUids: ZUidRange.prefault({}),
  /** The first tenant created is trusted (see services/tenants.ts); `npm start` sets it. */
  trustFirstTenant: z.boolean().default(false),
  scheduler: z
    .object({
      mode: z.enum(['parallel', 'serial']).default('parallel'),
      workers: z.number().int().min(1).max(64).default(4),
      batchSize: z.number().int().min(1).max(5000).default(256),
      backoffBaseMs: z.number().int().positive().default(500),
      backoffMaxMs: z.number().int().positive().default(30_000),
    })
    .prefault({}),
})
export type TControlPlaneConfig = z.infer<typeof ZControlPlaneConfig>

export interface ControlPlaneDeps {
  database: Database
  bus: ChangeBus
  clock: Clock
  config: TControlPlaneConfig
  log: { info(obj: object, msg?: string): void; warn(obj: object, msg?: string): void; error(obj: object, msg?: string): void }
  /** Where latencies go for /metrics. */
  observe?: CoreObserver
}

/** Wires the core services and control loops. One per BFF process. */
export function createControlPlane({ database, bus, clock, config, log, observe = ignoreObservations }: ControlPlaneDeps) {
  const db = database.prisma
  const heartbeatLag = createHeartbeatLag(clock, config.heartbeatIntervalMs)
  const hot = createHotStore({
    hot: database.hot,
    hotPool: database.hotPool,
    clock,
    flushMs: config.statusFlushMs,
    onError: (err) => log.error({ err: err.message }, 'hot store write failed'),
  })
  const leases = createNodeLeases({
    hotPool: database.hotPool,
    clock,
    onError: (err) => log.error({ err: err.message }, 'heartbeat write failed'),
    onNodesRevived: (ids) => ids.forEach((id) => bus.publish({ kind: 'fleet', what: 'node', nodeId: id })),
  })
  const telemetry = createTelemetryService({
    database,
    db,
    bus,
    clock,
    config: { logLinesPerInstance: config.logLinesPerInstance, metricsRetentionMs: config.metricsRetentionMs, nodeSampleEveryMs: 10_000 },
  })
  const lbNodes = createLbNodes({ db, hot: database.hot, clock, bus })
  const networks = createNetworkService({ db, hot, bus, settings: config.network })
  const hasher = createPasswordHasher({ concurrency: config.passwordHashConcurrency, maxQueued: config.passwordHashMaxQueued, cost: config.passwordHashCost })
  const loginThrottle = createLoginThrottle({ pool: database.hotPool, clock, config: config.loginThrottle })
  const auth = createAuthService({ db, clock, sessionTtlMs: config.sessionTtlHours * 3_600_000, hasher, throttle: loginThrottle })
  const audit = createAuditTrail({ db })
  const auditRetention = createAuditRetention({ db, clock, days: config.auditRetentionDays })
  const services = {
    auth,
    tenants: createTenantService({ db, hot, bus, networks, uids: config.tenantUids, trustFirstTenant: config.trustFirstTenant }),
    members: createMemberService({ db, hot, bus }),
    invitations: createInvitationService({ db, hot, bus, clock, auth, hasher, ttlMs: config.invitationTtlHours * 3_600_000 }),
    apps: createAppService({ db, hot, bus, clock, networks }),
    networks,
    nodes: createNodeService({ db, hot, leases, bus, clock }),
    events: createEventService({ hot }),
    audit,
    agents: createAgentService({
      db,
      hot,
      audit,
      leases,
      bus,
      clock,
      sessionStaleMs: 3 * config.heartbeatIntervalMs,
      onHeartbeat: (nodeId, hb) => {
        const lag = heartbeatLag(nodeId)
        if (lag !== null) observe.heartbeatLag(lag)
        // The lease is answered without waiting for the usage sample (it is written with others' a little later).
        void telemetry.sampleNode(nodeId, hb.cpuUsedMillis, hb.memoryUsedMb).catch((err: Error) => log.warn({ nodeId, err: err.message }, 'node usage sample not recorded'))
      },
      loadBalancers: lbNodes,
    }),
    loadBalancers: createLoadBalancerService({ db, hot, hotDb: database.hot, bus, clock, lbNodes, ports: { min: config.lbPortMin, max: config.lbPortMax } }),
    telemetry,
    apiTokens: createApiTokenService({ db, hot, clock }),
  }
  const ports = { min: config.hostPortMin, max: config.hostPortMax }
  const commandQueue = createCommandQueue({ db, bus, clock })
  const moveStore = createMoveStore({ db, bus })
  const moves = createMoveService({ db, hot, bus, store: moveStore })
  const moveSteps = createMoveSteps({
    world: createMoveWorld({ db, hot, nodeSource: { pool: database.pool, hotPool: database.hotPool }, bus, ports, lbNodes }),
    agents: commandQueue.commands,
    clock,
    config: { selfFenceMs: config.selfFenceMs, fenceMarginMs: config.fenceMarginMs, nodeLeaseMs: config.nodeLeaseMs },
  })

  // Only the leader schedules; elsewhere placement requests wait in the database.
  let scheduler: Scheduler | null = null
  const schedule = async (ids: string[]) => {
    const s = scheduler
    if (!s || !ids.length) return
    const fresh = ids.filter((id) => !s.isQueued(id))
    if (fresh.length) s.enqueue(await loadRequests(database.pool, fresh))
  }
  const replicas = createReplicaController({
    db,
    hot,
    bus,
    clock,
    stoppedRetentionMs: config.stoppedRetentionMs,
    resyncIntervalMs: config.resyncIntervalMs,
    schedule,
    unschedule: (ids) => scheduler?.forget(ids),
    drains: lbNodes,
  })
  const lifecycle = createNodeLifecycle({
    db,
    hot,
    leases,
    bus,
    clock,
    schedule,
    log,
    onNodeLost: createNodeLossHandler({ db, hot, clock, moves }),
    config: {
      leaseMs: config.nodeLeaseMs,
      startupGraceMs: config.nodeStartupGraceMs,
      evictionGraceMs: config.evictionGraceMs,
      evictionsPerSecond: config.evictionsPerSecond,
      maxUnhealthyFraction: config.maxUnhealthyFraction,
    },
  })
  const drains = createDrainController({ db, hot, bus, clock, schedule, moves })
  const networkPeers = createNetworkPeersController({ db, hot, bus, resyncIntervalMs: config.resyncIntervalMs })
  const schedulerSamples = createSchedulerSamples({ hotPool: database.hotPool, bus, clock, take: () => scheduler?.takeSamples() ?? [] })

  /** Every control loop the leader runs; a new capability adds its controller here. */
  const controllers: Controller[] = [
    replicas.controller,
    lifecycle.controller,
    drains.controller,
    createMoveController({ db, hot, bus, clock, store: moveStore, steps: moveSteps }).controller,
    createVolumeCollector({ db, hot, agents: commandQueue.commands }).controller,
    createPreemptionController({ db, hot, nodeSource: { pool: database.pool, hotPool: database.hotPool }, bus, clock, moves, ports, schedule }).controller,
    { name: 'commands-prune', handle: () => commandQueue.prune(), periodic: { everyMs: 3_600_000, priority: 'low', ids: () => [undefined] } },
    schedulerSamples.controller,
    createLoadBalancerController({ db, bus, lbNodes }),
    createLbAddressController({ db, bus, resyncIntervalMs: config.resyncIntervalMs }),
    networkPeers.controller,
    networkPeers.names,
    { name: 'sessions-purge', handle: () => services.auth.purgeExpiredSessions().then(() => {}), periodic: { everyMs: 3_600_000, priority: 'low', ids: () => [undefined] } },
    { name: 'login-throttle-prune', handle: () => loginThrottle.prune(), periodic: { everyMs: 600_000, priority: 'low', ids: () => [undefined] } },
    { name: 'telemetry-prune', handle: () => services.telemetry.prune(), periodic: { everyMs: 60_000, priority: 'low', ids: () => [undefined] } },
    auditRetention.controller,
  ]

  const nodeSource = { pool: database.pool, hotPool: database.hotPool }
  function newScheduler() {
    return createScheduler({
      apply: (plan, range) => applyPlan(nodeSource, plan, range),
      clock,
      config: {
        mode: config.scheduler.mode,
        workers: config.scheduler.workers,
        batchSize: config.scheduler.batchSize,
        ports,
        backoff: { baseMs: config.scheduler.backoffBaseMs, maxMs: config.scheduler.backoffMaxMs },
      },
      loadNodes: (ids) => loadNodes(nodeSource, ids),
      async setPendingReasons(rows) {
        await database.pool.query(
          `UPDATE "Instance" AS i SET "pendingReason" = v.reason FROM unnest($1::uuid[], $2::text[]) AS v(id, reason)
           WHERE i.id = v.id AND i."nodeId" IS NULL AND i."pendingReason" IS DISTINCT FROM v.reason`,
          [rows.map((r) => r.instanceId), rows.map((r) => r.reason)],
        )
        const tenants = await db.instance.findMany({ where: { id: { in: rows.map((r) => r.instanceId) } }, distinct: ['tenantId'], select: { tenantId: true } })
        tenants.forEach((t) => bus.publish({ kind: 'tenant', tenantId: t.tenantId, what: 'instances' }))
      },
      onPlaced(placed, nodeIds) {
        for (const p of placed) observe.placementLatency(p.waitedMs / 1000)
        for (const nodeId of nodeIds) bus.publish({ kind: 'node-desired', nodeId })
        for (const tenantId of new Set(placed.map((p) => p.tenantId))) bus.publish({ kind: 'tenant', tenantId, what: 'instances' })
      },
      onError: (err) => log.error({ err: err.message }, 'scheduling batch failed'),
    })
  }

  /** Starts the loops; only the leader among several BFFs runs them. */
  function startControlLoops() {
    return runAsLeader(database.pool, {
      clock,
      retryMs: 2_000,
      onError: (err) => log.warn({ err: err.message }, 'leader lease connection failed'),
      onLeading: () => {
        log.info({}, 'leading: control loops started')
        const s = newScheduler()
        const endScheduling = runScheduling({
          scheduler: s,
          bus,
          clock,
          log,
          loadPending: () => loadRequests(database.pool),
          onReady: () => (scheduler = s),
        })
        const stopControllers = runControllers({
          controllers,
          bus,
          clock,
          workers: config.controllerWorkers,
          onError: (key, err) => log.error({ key, err: (err as Error).message }, 'controller failed'),
        })
        return async () => {
          await endScheduling()
          scheduler = null
          await stopControllers()
          await s.stop()
          log.info({}, 'control loops stopped')
        }
      },
    })
  }

  return {
    ...services,
    moves,
    /** What the gateway tells agents about self-fencing. */
    fencing: { selfFenceMs: config.selfFenceMs },
    /** Delivery of agent commands (the agent gateway's side of the AgentCommands port). */
    commands: commandQueue,
    hot,
    replicas,
    /** The audit trail's housekeeping (the leader runs it hourly; `expire()` runs it now). */
    auditRetention,
    startControlLoops,
    /** Scheduler queues and counters, when this process leads. */
    schedulerStats: (): SchedulerStats | null => scheduler?.stats() ?? null,
    /** Placements and time-to-placement per tenant, from the database (any BFF). */
    schedulerSeries: schedulerSamples.series,
    async flush() {
      await Promise.all([hot.flush(), leases.flush(), telemetry.flush()])
    },
  }
}
export type ControlPlane = ReturnType<typeof createControlPlane>
