import path from 'node:path'
import { type ChangeBus, HOT_SCHEMA, applyMigrations, createChangeBus, createControlPlane, openDatabase, randomPassword, systemClock, ZControlPlaneConfig, type Clock } from '@alveary/core'
import pino, { type Logger } from 'pino'
import { defaultMigrationsDir, type TBffEnv } from './config'
import { startEmbeddedPostgres } from './embedded-db'
import { createMetrics } from './metrics'
import { createBffServer } from './server'

export interface StartedBff {
  url: string
  port: number
  databaseUrl: string
  core: ReturnType<typeof createControlPlane>
  bus: ChangeBus
  /** Set when this start created the operator account with a generated password. */
  operator: { email: string; password: string | null }
  stop(): Promise<void>
}

/** Starts everything one BFF process runs. Used by main.ts, start-all.ts and the tests. */
export async function startBff(env: TBffEnv, opts: { log?: Logger; clock?: Clock; runControlLoops?: boolean } = {}): Promise<StartedBff> {
  const log = opts.log ?? pino({ level: env.LOG_LEVEL }, pino.destination(2))
  const clock = opts.clock ?? systemClock
  const embedded = env.DATABASE_URL
    ? null
    : await startEmbeddedPostgres({ databaseDir: path.join(env.ALVEARY_DATA_DIR, 'postgres'), port: env.ALVEARY_EMBEDDED_PG_PORT, database: 'alveary' })
  const databaseUrl = env.DATABASE_URL ?? embedded!.url
  const database = openDatabase(databaseUrl, { hotUrl: env.DATABASE_URL_HOT })
  let bus: ChangeBus | null = null
  try {
    const migrationsDir = env.ALVEARY_MIGRATIONS_DIR ?? defaultMigrationsDir
    const migrated = await applyMigrations(database.pool, migrationsDir)
    const migratedHot = await applyMigrations(database.hotPool, path.join(migrationsDir, '../hot/migrations'), { schema: HOT_SCHEMA })
    if (migrated.applied.length || migratedHot.applied.length) log.info({ applied: migrated.applied, hot: migratedHot.applied }, 'database migrated')
    const changes = await createChangeBus(database.pool, { clock, onError: (err) => log.warn({ err: err.message }, 'change bus') })
    bus = changes
    const config = ZControlPlaneConfig.parse({
      heartbeatIntervalMs: env.ALVEARY_HEARTBEAT_MS,
      statusFlushMs: env.ALVEARY_STATUS_FLUSH_MS,
      nodeLeaseMs: env.ALVEARY_NODE_LEASE_MS,
      nodeStartupGraceMs: env.ALVEARY_NODE_STARTUP_GRACE_MS,
      stoppedRetentionMs: env.ALVEARY_STOPPED_RETENTION_MS,
      auditRetentionDays: env.ALVEARY_AUDIT_RETENTION_DAYS,
      evictionGraceMs: env.ALVEARY_EVICTION_GRACE_MS,
      selfFenceMs: env.ALVEARY_SELF_FENCE_MS,
      fenceMarginMs: env.ALVEARY_FENCE_MARGIN_MS,
      hostPortMin: env.ALVEARY_HOST_PORT_MIN,
      lbPortMin: env.ALVEARY_LB_PORT_MIN,
      lbPortMax: env.ALVEARY_LB_PORT_MAX,
      hostPortMax: env.ALVEARY_HOST_PORT_MAX,
      scheduler: { mode: env.ALVEARY_SCHEDULER_MODE },
      network: { pool: env.ALVEARY_NETWORK_POOL, defaultPrefix: env.ALVEARY_NETWORK_PREFIX_LENGTH },
      tenantUids: { min: env.ALVEARY_TENANT_UID_MIN, max: env.ALVEARY_TENANT_UID_MAX },
      trustFirstTenant: env.ALVEARY_TRUST_FIRST_TENANT,
      passwordHashConcurrency: env.ALVEARY_PASSWORD_HASH_CONCURRENCY,
      passwordHashMaxQueued: env.ALVEARY_PASSWORD_HASH_QUEUE,
      passwordHashCost: env.ALVEARY_PASSWORD_HASH_COST,
      loginThrottle: {
        accountFreeFailures: env.ALVEARY_LOGIN_ACCOUNT_FAILURES,
        addressFreeFailures: env.ALVEARY_LOGIN_ADDRESS_FAILURES,
        backoffBaseSeconds: env.ALVEARY_LOGIN_BACKOFF_BASE_SECONDS,
        backoffMaxSeconds: env.ALVEARY_LOGIN_BACKOFF_MAX_SECONDS,
      },
    })
    const metrics = createMetrics()
    const core = createControlPlane({ database, bus: changes, clock, config, log, observe: metrics.core })

    const generated = env.ALVEARY_OPERATOR_PASSWORD ? null : randomPassword()
    const { created } = await core.auth.ensureOperator(env.ALVEARY_OPERATOR_EMAIL, env.ALVEARY_OPERATOR_PASSWORD ?? generated!)

    const http = createBffServer({
      core,
      bus: changes,
      database,
      log,
      heartbeatIntervalMs: config.heartbeatIntervalMs,
      agents: {
        helloTimeoutMs: env.ALVEARY_AGENT_HELLO_TIMEOUT_MS,
        maxPendingPerIp: env.ALVEARY_AGENT_MAX_PENDING_PER_IP,
        maxConcurrentHellos: env.ALVEARY_AGENT_MAX_CONCURRENT_HELLOS,
        helloQueue: env.ALVEARY_AGENT_HELLO_QUEUE,
      },
      trustProxy: env.ALVEARY_TRUST_PROXY,
      secureCookies: env.ALVEARY_SECURE_COOKIES,
      metrics,
    })
    const port = await http.listen(env.BFF_PORT, env.BFF_HOST)
    const loops = opts.runControlLoops === false ? null : core.startControlLoops()
    log.info({ port, database: embedded ? 'embedded' : 'external' }, 'bff listening')
    return {
      url: `http://127.0.0.1:${port}`,
      port,
      databaseUrl,
      core,
      bus: changes,
      operator: { email: env.ALVEARY_OPERATOR_EMAIL, password: created ? (env.ALVEARY_OPERATOR_PASSWORD ?? generated) : null },
      async stop() {
        // Connections dropping while everything shuts down is expected, not worth a warning.
        log.level = 'error'
        await loops?.stop()
        await http.close()
        // Heartbeats and status reports still waiting for their group commit.
        await core.flush().catch(() => {})
        await changes.close()
        await database.close()
        await embedded?.stop()
      },
    }
  } catch (err) {
    await bus?.close()
    await database.close()
    await embedded?.stop()
    throw err
  }
}
