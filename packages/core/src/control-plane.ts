import { z } from 'zod'
import { createAgentService } from './agents/agent-service'
import type { Clock } from './clock'
import { runAsLeader } from './controllers/leader'
import { createReplicaController } from './controllers/replicas'
import { createWorkQueue } from './controllers/work-queue'
import { createAppService } from './services/apps'
import { createAuthService } from './services/auth'
import { createEventService } from './services/events'
import { createMemberService } from './services/members'
import { createNodeService } from './services/nodes'
import { createTenantService } from './services/tenants'
import type { ChangeBus } from './store/change-bus'
import type { Database } from './store/db'

export const ZControlPlaneConfig = z.object({
  sessionTtlHours: z.number().positive().default(24 * 7),
  heartbeatIntervalMs: z.number().int().positive().default(5_000),
  /** A node silent this long becomes NotReady. */
  nodeLeaseMs: z.number().int().positive().default(20_000),
  resyncIntervalMs: z.number().int().positive().default(10_000),
  stoppedRetentionMs: z.number().int().min(0).default(60_000),
  hostPortMin: z.number().int().min(1024).max(65535).default(20_000),
  hostPortMax: z.number().int().min(1024).max(65535).default(29_999),
  controllerWorkers: z.number().int().min(1).max(64).default(4),
})
export type TControlPlaneConfig = z.infer<typeof ZControlPlaneConfig>

export interface ControlPlaneDeps {
  database: Database
  bus: ChangeBus
  clock: Clock
  config: TControlPlaneConfig
  log: { info(obj: object, msg?: string): void; warn(obj: object, msg?: string): void; error(obj: object, msg?: string): void }
}

/** Wires the core services and control loops. One per BFF process. */
export function createControlPlane({ database, bus, clock, config, log }: ControlPlaneDeps) {
  const db = database.prisma
  const services = {
    auth: createAuthService({ db, clock, sessionTtlMs: config.sessionTtlHours * 3_600_000 }),
    tenants: createTenantService({ db, bus }),
    members: createMemberService({ db, bus }),
    apps: createAppService({ db, bus }),
    nodes: createNodeService({ db, bus, clock }),
    events: createEventService({ db }),
    agents: createAgentService({ db, bus, clock }),
  }
  const replicas = createReplicaController({ db, bus, clock, ports: { min: config.hostPortMin, max: config.hostPortMax }, stoppedRetentionMs: config.stoppedRetentionMs })

  /** Starts the loops; only the leader among several BFFs runs them. */
  function startControlLoops() {
    return runAsLeader(database.pool, {
      retryMs: 2_000,
      onError: (err) => log.warn({ err: err.message }, 'leader lease connection failed'),
      onLeading: () => {
        log.info({}, 'leading: control loops started')
        const queue = createWorkQueue({
          workers: config.controllerWorkers,
          handle: (appId) => replicas.reconcileApp(appId),
          onError: (appId, err) => log.error({ appId, err: (err as Error).message }, 'reconcile failed'),
        })
        const enqueueAll = (ids: Promise<string[]>) => ids.then((list) => list.forEach((id) => queue.add(id))).catch((err) => log.error({ err: err.message }, 'listing apps failed'))
        const unsubscribe = bus.subscribe((c) => {
          if (c.topic.startsWith('app:') && c.id) queue.add(c.id)
          // New or freed capacity: retry what is pending.
          else if (c.topic === 'scheduler' || (c.topic === 'fleet' && c.kind === 'node')) void enqueueAll(replicas.pendingAppIds())
        })
        void enqueueAll(replicas.allAppIds())
        const resync = setInterval(() => void enqueueAll(replicas.allAppIds()), config.resyncIntervalMs)
        const leases = setInterval(() => {
          services.agents.expireLeases(config.nodeLeaseMs).catch((err) => log.error({ err: err.message }, 'lease check failed'))
        }, Math.min(2_000, config.nodeLeaseMs / 2))
        const sessions = setInterval(() => void services.auth.purgeExpiredSessions().catch(() => {}), 3_600_000)
        return async () => {
          unsubscribe()
          clearInterval(resync)
          clearInterval(leases)
          clearInterval(sessions)
          await queue.stop()
          log.info({}, 'control loops stopped')
        }
      },
    })
  }

  return { ...services, replicas, startControlLoops }
}
export type ControlPlane = ReturnType<typeof createControlPlane>
