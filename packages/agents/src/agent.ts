/**
 * The node agent: wires config, connection, supervisor and stores together. All state lives
 * in the returned object, so several agents can run in one process (tests, local clusters).
 */
import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import pino, { type Logger } from 'pino'
import {
  CloseCode,
  PROTOCOL_VERSION,
  type TDesired,
  type THello,
  type TInstanceReport,
  type TLbReport,
  type TServerMessage,
} from '@alveary/core/protocol'
import { agentEndpoint, type AgentConfig } from './config'
import { createConnection, hintedDelay, type Backoff } from './connection'
import { DataDirLocked, lockDataDir } from './data-lock'
import { createCredentialStore, type StoredCredential } from './credentials'
import { createDockerDriver } from './runtime/docker/driver'
import { defaultDockerHost, probeDocker } from './runtime/docker/endpoint'
import { createProcessDriver } from './runtime/process/driver'
import type { DriverName, RuntimeDriver } from './runtime/types'
import { createHealthMonitor } from './health/monitor'
import { detectLbPlane } from './lb'
import { createLbServer } from './lb/serve'
import { createHousekeeping } from './housekeeping'
import { createLogShipper } from './logs'
import { createNetworkDriver, hostNetwork, type NetworkDriver } from './network'
import { defaultPrefix } from './network/names'
import { createStateStore } from './state-store'
import { createStatusReports } from './status-reports'
import { createSupervisor, type RestartBackoff } from './supervisor'
import { createUsageMeter } from './usage'
import { createNodeVolumes } from './volumes/node-volumes'
import type { Sandbox } from './sandbox'
import { detectSandbox, unsandboxed } from './sandbox/detect'

/** How often a load-balancing node sends its per-server traffic (with a heartbeat). */
const LB_STATS_MS = 5_000

export const AGENT_VERSION: string = (() => {
  try {
    return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version
  } catch {
    return '0.0.0'
  }
})()

export interface AgentOptions {
  /** Defaults to pino at config.logLevel, writing to stderr. */
  logger?: Logger
  /** Reconnect backoff; default 500ms base, 30s cap, full jitter. */
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
  const store = createStateStore(config.dataDir, (msg, err) => log.warn({ err }, msg))
  // The process driver always works (Linux, macOS), in a sandbox where restore() found one can be
  // built; docker joins once restore() found a working engine.
  const processDriver = (sandbox: Sandbox | null) => createProcessDriver({ dataDir: config.dataDir, cwd: options.cwd, adoptedPollMs: options.adoptedPollMs, sandbox })
  const drivers: Partial<Record<DriverName, RuntimeDriver>> = { process: processDriver(null) }
  let sandbox: Sandbox | null = null
  let sandboxCapability = unsandboxed('not probed yet')
  const meter = createUsageMeter()
  const debounceMs = options.statusDebounceMs ?? 100
  const metricsIntervalMs = options.metricsIntervalMs ?? (config.metricsIntervalSeconds ?? 10) * 1000
  let metricsTimer: NodeJS.Timeout | null = null
  const housekeeping = createHousekeeping({ dataDir: config.dataDir, maxLogBytes: config.logMaxMb * 1024 * 1024, retentionMs: config.instanceRetentionHours * 3_600_000, log })
  let sampling = false
  /** Docker usage from the last metrics sample, added to the heartbeat's process totals. */
  let dockerTotals = { cpuMillis: 0, memoryMb: 0 }
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

  let credential: StoredCredential | null = null
  /** Set when the server rejected the stored credential and a join token exists to fall back on. */
  let credentialRejected = false
  let lastAuth: 'credential' | 'joinToken' = 'joinToken'
  let nodeId: string | null = null
  let appliedGeneration = 0
  let welcomed = false
  let restored: Promise<void> | null = null
  let restoreDone = false
  let started = false
  let stopping: Promise<void> | null = null
  let heartbeatTimer: NodeJS.Timeout | null = null
  let beating = false
  let beatAgain = false

  /** Random per run: lets the server tell this agent reconnecting from a second agent with the same identity. */
  const runId = randomUUID()
  let duplicateRefusals = 0
  let lock: Awaited<ReturnType<typeof lockDataDir>> | null = null
  let resolveExit!: (e: AgentExit) => void
  const exited = new Promise<AgentExit>((r) => (resolveExit = r))

  /** What the last desired state asked of this node. */
  let desiredInstances: TDesired['instances'] = []
  let dockerEngine: 'docker' | 'podman' | null = null
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
    onLogs: (entries) => logs.push(entries),
    onChange(report) {
      health.observe(report)
      queueReport(report)
    },
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
    let auth: THello['auth']
    if (credential && !(credentialRejected && config.joinToken)) {
      auth = { nodeId: credential.nodeId, credential: credential.credential }
      lastAuth = 'credential'
    } else if (config.joinToken) {
      auth = { joinToken: config.joinToken }
      lastAuth = 'joinToken'
    } else {
      throw new AgentStartError('no credential and no join token')
    }
    return {
      type: 'hello',
      protocolVersion: PROTOCOL_VERSION,
      auth,
      node: {
        name: config.name,
        address: config.address,
        labels: config.labels,
        cpuMillis: config.cpuMillis,
        memoryMb: config.memoryMb,
        ...(config.portRange && { portRange: config.portRange }),
        drivers: driverNames(),
        agentVersion: AGENT_VERSION,
        capabilities: { lb: lb ? lbDriverName : null, lbNetworks: !!lb && lbJoinsNetworks, network: network.mode, sandbox: { ...sandboxCapability, ...(sandbox && { network: network.isolated ? 'own' : 'node' }) }, ...(volumes.capability && { volume: volumes.capability }) },
      },
      runId,
    }
  }

  function handleMessage(msg: TServerMessage): void {
    if (stopping) return
    if (msg.type === 'welcome') {
      if (credential && msg.nodeId !== credential.nodeId && !msg.credential) {
        log.warn({ stored: credential.nodeId, welcomed: msg.nodeId }, 'server welcomed us under another node id than the stored one')
      }
      nodeId = msg.nodeId
      if (msg.credential) {
        credential = { nodeId: msg.nodeId, credential: msg.credential }
        credentialRejected = false
        credentials.save(credential).then(
          () => log.info({ nodeId: msg.nodeId, path: credentials.path }, 'joined; credential stored'),
          (err) => log.error({ err, path: credentials.path }, 'could not store the node credential; the next start will need the join token again'),
        )
      }
      connection.resetBackoff()
      volumes.welcomed(msg.selfFenceMs)
      duplicateRefusals = 0
      welcomed = true
      log.info({ nodeId: msg.nodeId, heartbeatIntervalMs: msg.heartbeatIntervalMs }, 'welcomed by server')
      if (heartbeatTimer) clearInterval(heartbeatTimer)
      // A bogus tiny interval from the server must not turn heartbeats into a busy loop.
      heartbeatTimer = setInterval(() => void heartbeat(), Math.max(100, msg.heartbeatIntervalMs))
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

  function handleClose(code: number, reason: string, hintMs: number | null): 'reconnect' | 'stop' | { retryInMs: number } {
    welcomed = false
    volumes.disconnected()
    if (heartbeatTimer) clearInterval(heartbeatTimer)
    heartbeatTimer = null
    status.drop()
    switch (code) {
      case CloseCode.versionMismatch:
        log.fatal({ reason, protocolVersion: PROTOCOL_VERSION }, `the server does not speak this agent's protocol version ${PROTOCOL_VERSION}: ${reason}`)
        if (metricsTimer) clearInterval(metricsTimer)
        metricsTimer = null
        logs.close()
        health.stop()
        supervisor.detach()
        void supervisor
          .flush()
          .then(() => lock?.release())
          .then(() => resolveExit({ code: 2, reason: `protocol version mismatch: ${reason}` }))
        return 'stop'
      case CloseCode.unauthorized:
        if (lastAuth === 'credential') {
          log.error(
            { reason, nodeId: credential?.nodeId, path: credentials.path },
            config.joinToken
              ? `the server rejected the stored node credential (${reason}); falling back to the join token`
              : `the server rejected the stored node credential (${reason}); retrying. Fix it on the server, or delete ${credentials.path} and pass --join-token`,
          )
          if (config.joinToken) credentialRejected = true
        } else {
          log.error({ reason }, `the server rejected the join token (${reason}); retrying`)
          // Maybe the operator fixed the credential instead: alternate back to it.
          credentialRejected = false
        }
        return 'reconnect'
      case CloseCode.duplicate: {
        // A second agent with this node's identity (a copied data folder, a cloned machine): the
        // live one keeps the node. Come back when it could be gone, and say so only now and then.
        duplicateRefusals++
        const retryInMs = hintedDelay(Math.max(hintMs ?? 0, 5_000))
        if (duplicateRefusals === 1 || duplicateRefusals % 10 === 0)
          log.error(
            { reason, refusals: duplicateRefusals, retryInMs },
            `node ${config.name} already has a live connection from another agent with the same identity (a copied --data-dir or a cloned machine?). Stop one of them; this one keeps waiting`,
          )
        return { retryInMs }
      }
      case CloseCode.nameTaken:
        log.error(
          { reason, retryInMs: 60_000 },
          `a node named ${config.name} already exists and joins never take a node over: start this agent with that node's data folder (its credential), pick another --name, or have an operator re-key the node and pass the re-key token as --join-token`,
        )
        return { retryInMs: hintedDelay(60_000) }
      case CloseCode.replaced:
        log.warn({ reason }, 'the server handed this node to another connection (this one looked silent, or a second agent shares the identity)')
        return 'reconnect'
      case CloseCode.badFrame:
        log.error({ reason }, 'the server rejected a frame from this agent')
        return 'reconnect'
      default:
        return 'reconnect'
    }
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
    void heartbeat()
  }

  function sendFullStatus(): void {
    if (welcomed) status.full(supervisor.reports().map(withHealth), lb?.last() ?? null)
  }

  /** Per-server load-balancer traffic rides along with heartbeats, at most every LB_STATS_MS. */
  let lbStatsAtMs = 0
  async function sendLbStats(): Promise<void> {
    if (!lb || Date.now() - lbStatsAtMs < LB_STATS_MS) return
    lbStatsAtMs = Date.now()
    try {
      const servers = await lb.stats()
      if (welcomed) connection.send({ type: 'lb-stats', servers: servers.slice(0, 20_000) })
    } catch (err) {
      log.debug({ err }, 'load-balancer statistics unavailable')
    }
  }

  async function heartbeat(): Promise<void> {
    if (beating) {
      // One in flight may carry an older applied generation: send another right after it.
      beatAgain = true
      return
    }
    beating = true
    beatAgain = false
    try {
      const usage = await meter.sample(supervisor.processGroups())
      usage.cpuUsedMillis += dockerTotals.cpuMillis
      usage.memoryUsedMb += dockerTotals.memoryMb
      if (welcomed) {
        connection.send({ type: 'heartbeat', ...usage, appliedGeneration })
        volumes.heartbeatSent()
        await sendLbStats()
      }
    } catch (err) {
      log.warn({ err }, 'heartbeat failed')
    } finally {
      beating = false
      if (beatAgain) void heartbeat()
    }
  }

  function driverNames(): DriverName[] {
    return (['process', 'docker'] as const).filter((d) => drivers[d])
  }

  async function detectDocker(): Promise<void> {
    if (config.dockerHost === 'none') return
    const host = config.dockerHost ?? (await defaultDockerHost())
    if (!host) {
      log.info('docker driver unavailable: no Docker or Podman socket found (pass --docker-host)')
      return
    }
    const probe = await probeDocker(host)
    if (!probe.ok) {
      log[config.dockerHost ? 'warn' : 'info']({ dockerHost: host }, `docker driver unavailable: ${probe.reason}`)
      return
    }
    drivers.docker = createDockerDriver({
      docker: probe.docker,
      nodeName: config.name,
      logger: log,
      pullTimeoutMs: options.pullTimeoutMs,
      engine: probe.engine,
      pidsLimit: config.sandboxPidsMax,
    })
    dockerEngine = probe.engine
    log.info({ dockerHost: host, engine: probe.engine, version: probe.version, apiVersion: probe.apiVersion }, 'docker driver available')
  }

  /** Per-instance usage every metricsIntervalMs; also checkpoints the log cursors. */
  async function sampleMetrics(): Promise<void> {
    if (sampling || stopping) return
    sampling = true
    try {
      supervisor.checkpoint()
      const usage = await supervisor.usage()
      const docker = usage.filter((u) => u.driver === 'docker')
      dockerTotals = { cpuMillis: docker.reduce((a, u) => a + u.cpuMillis, 0), memoryMb: docker.reduce((a, u) => a + u.memoryMb, 0) }
      if (!welcomed || usage.length === 0) return
      const ts = new Date().toISOString()
      for (let i = 0; i < usage.length; i += 10_000) {
        const instances = usage.slice(i, i + 10_000).map(({ instanceId, cpuMillis, memoryMb }) => ({ instanceId, cpuMillis, memoryMb }))
        connection.send({ type: 'metrics', ts, instances })
      }
    } catch (err) {
      log.warn({ err }, 'sampling instance metrics failed')
    } finally {
      sampling = false
    }
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
      await detectDocker().catch((err) => log.warn({ err }, 'docker driver detection failed'))
      try {
        network = await createNetworkDriver({ mode: config.network, prefix: config.networkPrefix ?? defaultPrefix(config.dataDir), vtep: config.address, log, onLbChange: () => lb?.reapply(), isolate: sandbox !== null })
      } catch (err) {
        throw new AgentStartError((err as Error).message)
      }
      await volumes.restore(dockerEngine)
      const plane = await detectLbPlane(config, log).catch((err) => (log.warn({ err }, 'load-balancer detection failed'), null))
      if (plane) {
        lbDriverName = plane.name
        lbJoinsNetworks = plane.joinsNetworks && network.mode === 'overlay'
        lb = createLbServer({ plane, send: sendLbReport, logger: log, netns: () => network.lbNamespaces() })
      }
      const records = await store.loadAll()
      const docker = drivers.docker
      if (docker?.discover) {
        // Containers of this node whose state file is lost are adopted too.
        try {
          records.push(...(await docker.discover(new Set(records.map((r) => r.instanceId)))))
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
      return nodeId
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
      try {
        credential = await credentials.load()
      } catch (err) {
        await lock.release()
        throw new AgentStartError(`cannot read the stored credential: ${(err as Error).message}`)
      }
      if (!credential && !config.joinToken) {
        await lock.release()
        throw new AgentStartError(`no stored credential in ${credentials.path} and no join token: pass --join-token (or ALVEARY_JOIN_TOKEN) to join`)
      }
      nodeId = credential?.nodeId ?? null
      await restore()
      log.info({ server: agentEndpoint(config.server), dataDir: config.dataDir, auth: credential ? 'credential' : 'join token', drivers: driverNames() }, 'agent starting')
      metricsTimer = setInterval(() => void sampleMetrics(), metricsIntervalMs)
      metricsTimer.unref()
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
        const stopInstances = opts.stopInstances ?? config.stopOnExit
        if (stopInstances) {
          log.info('stopping all instances before exiting')
          // Still connected: the server sees the instances go down.
          await supervisor.stopAll()
          status.flush()
          logs.flush()
        } else {
          log.info('exiting; instances keep running and will be re-adopted by the next agent')
        }
        if (heartbeatTimer) clearInterval(heartbeatTimer)
        status.drop()
        if (metricsTimer) clearInterval(metricsTimer)
        heartbeatTimer = metricsTimer = null
        await housekeeping.stop()
        // HAProxy serves on while the agent restarts (the next one adopts it), unless everything stops.
        if (lb && (stopInstances || lbDriverName === 'builtin')) await lb.stop()
        // Followers stop first (their cursors are persisted), then what they read goes out.
        health.stop()
        supervisor.detach()
        logs.flush()
        logs.close()
        await volumes.close()
        await connection.close()
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
