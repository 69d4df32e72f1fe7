/**
 * The node agent: wires config, connection, supervisor and stores together, restores what a
 * previous agent left, applies desired states and shuts down. Who it is and what a close means
 * live in session/, heartbeats there too, metrics in metrics.ts. All state lives in the
 * returned object, so several agents can run in one process (tests, local clusters).
 */
import { randomUUID } from 'node:crypto'
import { mkdir } from 'node:fs/promises'
import pino, { type Logger } from 'pino'
import type { TContainerCapability, TDesired, THello, TInstanceReport, TLbReport, TServerMessage } from '@alveary/core/protocol'
import { agentEndpoint, type AgentConfig } from './config'
import { createConnection, type CloseDecision } from './connection'
import type { Backoff } from './reconnect-delay'
import { DataDirLocked, lockDataDir } from './data-lock'
import { createCredentialStore, type StoredCredential } from './credentials'
import { detectDocker } from './runtime/docker/detect'
import { createProcessDriver } from './runtime/process/driver'
import type { DriverName, RuntimeDriver } from './runtime/types'
import { createHealthMonitor } from './health/monitor'
import { detectLbPlane } from './lb'
import { createLbServer } from './lb/serve'
import { createHousekeeping } from './housekeeping'
import { createLogShipper } from './logs'
import { createMetrics } from './metrics'
import { createNetworkDriver, hostNetwork, type NetworkDriver } from './network'
import { defaultPrefix } from './network/names'
import { createClosePolicy } from './session/close'
import { createHeartbeats } from './session/heartbeat'
import { helloFrame } from './session/hello'
import { createIdentity } from './session/identity'
import { createStateStore } from './state-store'
import { createPrometheus } from './prometheus'
import { createStatusReports } from './status-reports'
import { createSupervisor, type RestartBackoff } from './supervisor'
import { createUsageMeter } from './usage'
import { createNodeVolumes } from './volumes/node-volumes'
import type { Sandbox } from './sandbox'
import { detectSandbox, unsandboxed } from './sandbox/detect'

export interface AgentOptions {
  /** Defaults to pino at config.logLevel, writing to stderr. */
  logger?: Logger
  /** Reconnect backoff; default 250 ms base, 2 s cap, full jitter (reconnect-delay.ts). */
  reconnectBackoff?: Backoff
  /** Restart-policy backoff; default 1s doubling to 60s, reset after 10s of healthy running. */
  restartBackoff?: Partial<RestartBackoff>
  /** Working directory of spawned processes; default the agent's cwd. */
  cwd?: string
  /** Delay used to batch partial status reports; default 100ms. */
  statusDebounceMs?: number
  /** Liveness poll of re-adopted processes; default 1000ms. */
  adoptedPollMs?: number
  /** Period of `metrics` frames; default config.metricsIntervalSeconds (10s). */
  metricsIntervalMs?: number
  /** Batching of `logs` frames; default 500ms / 500 lines. */
  logFlushMs?: number
  /** Lines kept while disconnected (oldest dropped); default 5000. */
  logBufferLines?: number
  /** How long an image pull may take; default 10 minutes. */
  pullTimeoutMs?: number
  /** Period of the instance folders' housekeeping (output rotation, old folders); default 60s. */
  housekeepingMs?: number
}

export interface AgentExit {
  /** Process exit code the CLI uses: 0 after shutdown(), 2 on a protocol version mismatch. */
  code: number
  reason: string
}

export interface Agent {
  readonly config: AgentConfig
  readonly logger: Logger
  /** Node id from the stored credential or the last welcome; null before either. */
  readonly nodeId: string | null
  /** Generation of the last desired state applied. */
  readonly appliedGeneration: number
  /** Drivers found working by restore(); advertised in hello. */
  readonly drivers: DriverName[]
  /** Load-balancer data plane found by restore(); null: none. */
  readonly lbDriver: 'haproxy' | 'builtin' | null
  /** Resolves once the agent has stopped, by shutdown() or because the server made it give up. */
  readonly exited: Promise<AgentExit>
  /** restore(), then connect (and keep reconnecting). Rejects with AgentStartError if it cannot authenticate. */
  start(): Promise<void>
  /** Detects the drivers, loads the state files and re-adopts live processes and containers; starts nothing. Part of start(). */
  restore(): Promise<void>
  /** Applies a desired state exactly as if the server had sent it. */
  applyDesired(desired: TDesired): void
  reports(): TInstanceReport[]
  /** Resolves when no instance is mid-start or mid-stop. */
  settled(): Promise<void>
  /**
   * Disconnects. Stops every instance first when `stopInstances` (default: config.stopOnExit);
   * otherwise leaves them running for the next agent to re-adopt.
   */
  shutdown(opts?: { stopInstances?: boolean }): Promise<void>
}

/** The agent cannot start as configured (exit code 2 in the CLI). */
export class AgentStartError extends Error {
  override name = 'AgentStartError'
}

export function createAgent(config: AgentConfig, options: AgentOptions = {}): Agent {
  const log =
    options.logger ?? pino({ level: config.logLevel, base: { node: config.name } }, pino.destination({ dest: 2, sync: true }))
  const credentials = createCredentialStore(config.dataDir)
  const identity = createIdentity({ credentials, joinToken: config.joinToken, log })
  const closePolicy = createClosePolicy({ name: config.name, identity, log })
  const store = createStateStore(config.dataDir, (msg, err) => log.warn({ err }, msg))
  // The process driver always works (Linux, macOS), in a sandbox where restore() found one can be
  // built; docker joins once restore() found a working engine.
  const processDriver = (sandbox: Sandbox | null) => createProcessDriver({ dataDir: config.dataDir, cwd: options.cwd, adoptedPollMs: options.adoptedPollMs, sandbox })
  const drivers: Partial<Record<DriverName, RuntimeDriver>> = { process: processDriver(null) }
  let sandbox: Sandbox | null = null
  let sandboxCapability = unsandboxed('not probed yet')
  let containerCapability: TContainerCapability | null = null
  const debounceMs = options.statusDebounceMs ?? 100
  const metricsIntervalMs = options.metricsIntervalMs ?? (config.metricsIntervalSeconds ?? 10) * 1000
  const housekeeping = createHousekeeping({ dataDir: config.dataDir, maxLogBytes: config.logMaxMb * 1024 * 1024, retentionMs: config.instanceRetentionHours * 3_600_000, log })
  let lastDropWarn = 0
  const logs = createLogShipper({
    send: (entries) => welcomed && connection.send({ type: 'logs', entries }),
    flushMs: options.logFlushMs,
    maxBuffered: options.logBufferLines,
    onDrop(count) {
      if (Date.now() - lastDropWarn < 10_000) return
      lastDropWarn = Date.now()
      log.warn({ dropped: count, total: logs.dropped }, 'log buffer full while disconnected: dropping the oldest lines')
    },
  })

  let appliedGeneration = 0
  let welcomed = false
  let restored: Promise<void> | null = null
  let restoreDone = false
  let started = false
  let stopping: Promise<void> | null = null

  /** Random per run: lets the server tell this agent reconnecting from a second agent with the same identity. */
  const runId = randomUUID()
  let lock: Awaited<ReturnType<typeof lockDataDir>> | null = null
  let resolveExit!: (e: AgentExit) => void
  const exited = new Promise<AgentExit>((r) => (resolveExit = r))

  /** What the last desired state asked of this node. */
  let desiredInstances: TDesired['instances'] = []
  const volumes = createNodeVolumes({
    dataDir: config.dataDir,
    sharedDir: config.sharedVolumes ?? null,
    address: config.address,
    drivers,
    log,
    send: (frame) => welcomed && connection.send(frame),
    mounted: () => supervisor.mountedVolumes(),
    onMayStart: () => supervisor.poke(),
    desired: () => desiredInstances,
    // A sandboxed instance runs as its tenant's uid: its volumes are its own to write.
    ownerOf: (d) => (sandbox && d.spec.driver === 'process' ? d.runAs : null),
    stageNetwork: (instanceId, timeoutMs) => network.whenStaged(instanceId, timeoutMs),
    whenStopped: (instanceId, timeoutMs) => supervisor.whenStopped(instanceId, timeoutMs),
  })
  /** Health checks run next to the instances; their results travel in the status reports. */
  const health = createHealthMonitor({
    onChange(instanceId) {
      const r = supervisor.report(instanceId)
      if (r) queueReport(r)
    },
    onLivenessFailed: (instanceId, reason) => supervisor.kill(instanceId, `liveness check failed (${reason})`),
  })
  const withHealth = (r: TInstanceReport): TInstanceReport => {
    const h = health.health(r.instanceId)
    return h ? { ...r, health: h } : r
  }
  const status = createStatusReports({ debounceMs, connected: () => welcomed, send: (frame) => connection.send(frame), withHealth })
  const queueReport = status.queue

  let lb: ReturnType<typeof createLbServer> | null = null
  let lbDriverName: 'haproxy' | 'builtin' = 'builtin'
  /** Its load balancers reach instances by their IPs inside tenant networks (network/overlay/lb-join.ts). */
  let lbJoinsNetworks = false
  const sendLbReport = (frame: { generation: number; reports: TLbReport[] }) => {
    if (welcomed) connection.send({ type: 'status', full: false, instances: [], loadBalancers: frame.reports, lbGeneration: frame.generation })
  }

  /** Host networking until restore() found whether the node can run the overlay. */
  let network: NetworkDriver = hostNetwork
  const supervisor = createSupervisor({
    drivers,
    store,
    volumes: volumes.instances,
    logger: log,
    startContext: (instance) => network.startContext(instance),
    backoff: options.restartBackoff,
    onLogs: (entries, shipped) => logs.push(entries, shipped),
    onChange(report) {
      health.observe(report)
      queueReport(report)
    },
  })
  const metrics = createMetrics({ supervisor, connected: () => welcomed, send: (frame) => connection.send(frame), log })
  // Only when asked to serve them: tests run many agents in one process, each would collect.
  const prometheus = config.metricsListen ? createPrometheus() : null
  const heartbeats = createHeartbeats({
    meter: createUsageMeter(),
    processGroups: () => supervisor.processGroups(),
    extraUsage: metrics.dockerTotals,
    appliedGeneration: () => appliedGeneration,
    connected: () => welcomed,
    send: (frame) => connection.send(frame),
    onSent: () => volumes.heartbeatSent(),
    lb: () => lb,
    log,
  })

  const connection = createConnection({
    url: agentEndpoint(config.server),
    logger: log,
    backoff: options.reconnectBackoff,
    hello: buildHello,
    onMessage: handleMessage,
    onClose: handleClose,
  })

  function buildHello(): THello {
    const auth = identity.auth()
    if (!auth) throw new AgentStartError('no credential and no join token')
    return helloFrame(config, auth, runId, {
      drivers: driverNames(),
      lb: lb ? lbDriverName : null,
      lbJoinsNetworks,
      network,
      sandbox: sandboxCapability,
      sandboxed: sandbox !== null,
      volume: volumes.capability,
      containers: containerCapability,
    })
  }

  function handleMessage(msg: TServerMessage): void {
    if (stopping) return
    if (msg.type === 'welcome') {
      identity.welcomed(msg)
      connection.resetBackoff()
      volumes.welcomed(msg.selfFenceMs)
      closePolicy.welcomed()
      welcomed = true
      log.info({ nodeId: msg.nodeId, heartbeatIntervalMs: msg.heartbeatIntervalMs }, 'welcomed by server')
      heartbeats.start(msg.heartbeatIntervalMs)
      sendFullStatus()
      // Output buffered while disconnected.
      logs.flush()
      return
    }
    if (!welcomed) {
      log.warn('ignoring a frame received before welcome')
      return
    }
    if (msg.type === 'lease') volumes.leaseAcknowledged()
    else if (msg.type === 'command') volumes.command(msg)
    else applyDesired(msg)
  }

  function handleClose(code: number, reason: string, hintMs: number | null): CloseDecision {
    welcomed = false
    volumes.disconnected()
    heartbeats.stop()
    status.drop()
    const next = closePolicy.decide(code, reason, hintMs)
    if (next === 'stop') giveUp(`protocol version mismatch: ${reason}`)
    return next
  }

  /** The server will never take this agent (exit code 2): its instances keep running for an agent that fits. */
  function giveUp(reason: string): void {
    metrics.stop()
    logs.close()
    health.stop()
    supervisor.detach()
    void supervisor
      .flush()
      .then(() => lock?.release())
      .then(() => resolveExit({ code: 2, reason }))
  }

  function applyDesired(desired: TDesired): void {
    // Starting instances before the left-behind ones are adopted would run them twice.
    if (!restoreDone) throw new Error('applyDesired() before restore() completed')
    if (stopping) return
    desiredInstances = desired.instances
    health.setDesired(desired.instances)
    // Networks first: an instance's start waits for its namespace (startContext).
    network.apply(desired)
    const actions = supervisor.apply(desired.instances)
    volumes.applied()
    // Checks may have changed for instances whose run did not.
    for (const r of supervisor.reports()) health.observe(r)
    appliedGeneration = desired.generation
    lb?.apply(desired.loadBalancers ?? [], desired.generation)
    log.debug({ generation: desired.generation, instances: desired.instances.length, actions: actions.length }, 'desired state applied')
    sendFullStatus()
    // The server learns the applied generation from heartbeats (rollouts and consoles wait
    // for it): acknowledge it now, not at the next beat seconds later.
    void heartbeats.beat()
  }

  function sendFullStatus(): void {
    if (welcomed) status.full(supervisor.reports().map(withHealth), lb?.last() ?? null)
  }

  function driverNames(): DriverName[] {
    return (['process', 'docker'] as const).filter((d) => drivers[d])
  }

  function restore(): Promise<void> {
    restored ??= (async () => {
      await mkdir(config.dataDir, { recursive: true, mode: 0o700 })
      try {
        ;({ sandbox, capability: sandboxCapability } = await detectSandbox(config, log))
      } catch (err) {
        throw new AgentStartError((err as Error).message)
      }
      drivers.process = processDriver(sandbox)
      const docker = await detectDocker(config, log, options.pullTimeoutMs).catch((err) => (log.warn({ err }, 'docker driver detection failed'), null))
      if (docker) drivers.docker = docker.driver
      containerCapability = docker?.capability ?? null
      try {
        network = await createNetworkDriver({ mode: config.network, prefix: config.networkPrefix ?? defaultPrefix(config.dataDir), vtep: config.address, log, onLbChange: () => lb?.reapply(), isolate: sandbox !== null, ...(prometheus && { observeDns: prometheus.observeDns }) })
      } catch (err) {
        throw new AgentStartError((err as Error).message)
      }
      await volumes.restore(docker?.engine ?? null)
      const plane = await detectLbPlane(config, log).catch((err) => (log.warn({ err }, 'load-balancer detection failed'), null))
      if (plane) {
        lbDriverName = plane.name
        lbJoinsNetworks = plane.joinsNetworks && network.mode === 'overlay'
        lb = createLbServer({ plane, send: sendLbReport, logger: log, netns: () => network.lbNamespaces() })
      }
      const records = await store.loadAll()
      if (docker?.driver.discover) {
        // Containers of this node whose state file is lost are adopted too.
        try {
          records.push(...(await docker.driver.discover(new Set(records.map((r) => r.instanceId)))))
        } catch (err) {
          log.warn({ err }, 'listing the containers of this node failed')
        }
      }
      await supervisor.adopt(records)
      // Before anything else: copies this node must not run any more (lease lapsed, volume moved on) stop.
      await supervisor.fenceStale((f) => volumes.stale(f))
      const running = supervisor.reports().filter((r) => r.state === 'running').length
      if (records.length) log.info({ known: records.length, running }, 'restored instances from the data dir')
      restoreDone = true
    })()
    return restored
  }

  return {
    config,
    logger: log,
    get nodeId() {
      return identity.nodeId
    },
    get appliedGeneration() {
      return appliedGeneration
    },
    get drivers() {
      return driverNames()
    },
    get lbDriver() {
      return lb ? lbDriverName : null
    },
    exited,
    async start() {
      if (started) throw new Error('agent already started')
      started = true
      await mkdir(config.dataDir, { recursive: true, mode: 0o700 })
      try {
        lock = await lockDataDir(config.dataDir)
      } catch (err) {
        if (err instanceof DataDirLocked) throw new AgentStartError(err.message)
        throw err
      }
      let credential: StoredCredential | null
      try {
        credential = await identity.load()
      } catch (err) {
        await lock.release()
        throw new AgentStartError(`cannot read the stored credential: ${(err as Error).message}`)
      }
      if (!credential && !config.joinToken) {
        await lock.release()
        throw new AgentStartError(`no stored credential in ${credentials.path} and no join token: pass --join-token (or ALVEARY_JOIN_TOKEN) to join`)
      }
      await restore()
      if (prometheus && config.metricsListen)
        await prometheus.listen(config.metricsListen, log).catch((err: Error) => {
          throw new AgentStartError(`--metrics-listen ${config.metricsListen}: ${err.message}`)
        })
      log.info({ server: agentEndpoint(config.server), dataDir: config.dataDir, auth: credential ? 'credential' : 'join token', drivers: driverNames() }, 'agent starting')
      metrics.start(metricsIntervalMs)
      housekeeping.start(options.housekeepingMs ?? 60_000)
      void housekeeping.sweep()
      volumes.startUsage()
      connection.start()
    },
    restore,
    applyDesired,
    reports: () => supervisor.reports().map(withHealth),
    settled: () => supervisor.settled(),
    shutdown(opts = {}) {
      stopping ??= (async () => {
        // No sample any more (as the instances stop, there is nothing to measure).
        metrics.stop()
        const stopInstances = opts.stopInstances ?? config.stopOnExit
        if (stopInstances) {
          log.info({ graceSeconds: config.exitGraceSeconds }, 'stopping all instances before exiting')
          // Still connected: the server sees the instances go down. HAProxy goes at the same time:
          // nothing is left to balance, and an exit cut short must not leave it holding the ports.
          await Promise.all([supervisor.stopAll(config.exitGraceSeconds), lb?.stop()])
          status.flush()
          logs.flush()
        } else {
          log.info('exiting; instances keep running and will be re-adopted by the next agent')
        }
        heartbeats.stop()
        status.drop()
        await housekeeping.stop()
        // HAProxy serves on while the agent restarts (the next one adopts it); the built-in plane lives in this process.
        if (lb && !stopInstances && lbDriverName === 'builtin') await lb.stop()
        // Followers stop first, then what they read goes out: a cursor is persisted past what went out only, so
        // lines still held (not welcomed, a read in flight) are read again by the next agent, not lost.
        health.stop()
        supervisor.detach()
        logs.flush()
        logs.close()
        await volumes.close()
        await connection.close()
        await prometheus?.close()
        await network.close({ stopped: stopInstances })
        // The next agent re-adopts from these files: they must be on disk before the process exits.
        await supervisor.flush()
        await lock?.release()
        resolveExit({ code: 0, reason: 'shutdown' })
      })()
      return stopping
    },
  }
}
