/**
 * Agent configuration: flags, each with an environment fallback (the flag wins), validated
 * with zod so a typo fails fast with a clear message instead of a confusing runtime error.
 */
import { hostname, cpus, totalmem } from 'node:os'
import { resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { z } from 'zod'
import { ZNodeInfo } from '@alveary/core/protocol'
import { ZPREFIX } from './network/names'
import { parseDockerHost } from './runtime/docker/endpoint'

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

/** Accepts ws(s) and http(s) URLs; the agent endpoint path `/agent` is added by the agent. */
export function normalizeServerUrl(input: string): string {
  const url = new URL(input)
  if (url.protocol === 'http:') url.protocol = 'ws:'
  else if (url.protocol === 'https:') url.protocol = 'wss:'
  else if (url.protocol !== 'ws:' && url.protocol !== 'wss:') throw new Error(`unsupported protocol ${url.protocol}`)
  url.pathname = url.pathname.replace(/\/+$/, '')
  url.hash = ''
  return url.toString().replace(/\/$/, '')
}

/** The WebSocket endpoint for a server base URL: `<server>/agent`. */
export function agentEndpoint(server: string): string {
  const url = new URL(server)
  if (!url.pathname.endsWith('/agent')) url.pathname = `${url.pathname.replace(/\/+$/, '')}/agent`
  return url.toString()
}

export function parseLabels(input: string): Record<string, string> {
  const labels: Record<string, string> = {}
  for (const part of input.split(',')) {
    const item = part.trim()
    if (!item) continue
    const eq = item.indexOf('=')
    if (eq <= 0) throw new Error(`label "${item}" is not key=value`)
    labels[item.slice(0, eq).trim()] = item.slice(eq + 1).trim()
  }
  return labels
}

const ZServer = z.string().transform((s, ctx) => {
  try {
    return normalizeServerUrl(s)
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: `not a ws(s):// or http(s):// URL (${(err as Error).message})` })
    return z.NEVER
  }
})

/** Numbers come as strings from flags and env, as numbers from code. */
const ZIntString = (min: number, max: number) =>
  z
    .union([z.number(), z.string()])
    .transform((v, ctx) => {
      const n = typeof v === 'number' ? v : /^\s*\d+\s*$/.test(v) ? Number(v) : Number.NaN
      if (!Number.isInteger(n) || n < min || n > max) {
        ctx.addIssue({ code: 'custom', message: `must be a whole number from ${min} to ${max}, got "${v}"` })
        return z.NEVER
      }
      return n
    })

const ZLabelsInput = z
  .union([z.string(), z.record(z.string(), z.string())])
  .transform((v, ctx) => {
    if (typeof v !== 'string') return v
    try {
      return parseLabels(v)
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: `${(err as Error).message} (expected k=v,k2=v2)` })
      return z.NEVER
    }
  })
  .pipe(ZNodeInfo.shape.labels)

export const ZAgentConfig = z.object({
  /** Base URL of the control plane (normalized to ws:// or wss://). */
  server: ZServer,
  /** Used to join when no credential is stored yet (or the stored one is rejected). */
  joinToken: z.string().min(10, 'the join token is too short').max(200).optional(),
  name: ZNodeInfo.shape.name,
  /** Where this node's instance ports are reachable from clients. */
  address: ZNodeInfo.shape.address,
  labels: ZLabelsInput,
  cpuMillis: ZIntString(1, 10_000_000),
  memoryMb: ZIntString(1, 100_000_000),
  /** Host ports for instances on this node ("min-max"); unset: the control plane's default range. */
  portRange: z
    .string()
    .regex(/^\d{4,5}-\d{4,5}$/, 'use MIN-MAX, e.g. 31000-31999')
    .transform((s) => {
      const [min, max] = s.split('-').map(Number) as [number, number]
      return { min, max }
    })
    .pipe(z.object({ min: z.number().int().min(1024).max(65535), max: z.number().int().min(1024).max(65535) }).refine((r) => r.max >= r.min, 'MAX must be at least MIN'))
    .optional(),
  dataDir: z.string().min(1).transform((p) => resolve(p)),
  /** Stop all instances on SIGINT/SIGTERM; by default they keep running for re-adoption. */
  stopOnExit: z.boolean(),
  /** With stopOnExit: an instance's stop grace is cut to this on exit, so a Ctrl-C ends in bounded time. */
  exitGraceSeconds: ZIntString(0, 3_600).default(10),
  logLevel: z.enum(LOG_LEVELS),
  /**
   * Docker Engine API endpoint (Docker or Podman): unix:///path or tcp://host:port; `none`
   * disables the docker driver. Unset: the first existing default socket.
   */
  dockerHost: z
    .string()
    .refine(
      (v) => {
        if (v === 'none') return true
        try {
          parseDockerHost(v)
          return true
        } catch {
          return false
        }
      },
      { message: 'expected unix:///path/to/socket, tcp://host:port or none' },
    )
    .optional(),
  /** Output files of process instances above this are rotated (one old file kept); MiB. */
  logMaxMb: ZIntString(1, 100_000).default(10),
  /** Folders of instances no longer on this node (their logs) are deleted this long after their last change. */
  instanceRetentionHours: ZIntString(0, 87_600).default(24),
  /** Seconds between `metrics` frames; default 10. */
  metricsIntervalSeconds: ZIntString(1, 3600).optional(),
  /** host:port where the agent serves its own Prometheus metrics (GET /metrics: the DNS responder's); unset: none. */
  metricsListen: z
    .string()
    .regex(/^[^\s:]+:\d{1,5}$/, 'expected host:port, e.g. 127.0.0.1:9464')
    .refine((v) => Number(v.slice(v.lastIndexOf(':') + 1)) <= 65_535, 'port above 65535')
    .optional(),
  /** Mount point of storage every node mounts (NFS…): this node offers `shared` volumes there. */
  sharedVolumes: z.string().min(1).transform((p) => resolve(p)).optional(),
  /** Load-balancer data plane offered: auto (HAProxy when it runs here, else the built-in proxy), or one of them, or none. */
  lbDriver: z.enum(['auto', 'haproxy', 'builtin', 'none']).default('auto'),
  /**
   * Tenant networks: overlay (namespaces, bridges, VXLAN; needs root), host (the node's own
   * network), or auto (overlay when the node can, else host with a note). The CLI defaults to
   * auto; agents created in code default to host.
   */
  network: z.enum(['auto', 'overlay', 'host']).default('host'),
  /**
   * Names of everything the overlay creates start with it. Unset: derived from the data
   * directory, so several agents on one machine never touch each other's namespaces.
   */
  networkPrefix: z.string().regex(ZPREFIX, '1-4 lowercase letters or digits, starting with a letter').optional(),
  /**
   * Process instances in a sandbox (sandbox/: bwrap, the tenant's uid, namespaces, cgroup
   * limits): on (refuse to start without one), off, or auto (when the node can, else unsandboxed
   * with a warning: only trusted tenants are placed there).
   */
  sandbox: z.enum(['auto', 'on', 'off']).default('auto'),
  /** Threads and processes one sandboxed instance may have (pids.max): a fork bomb stops there. */
  sandboxPidsMax: ZIntString(16, 1_000_000).default(1024),
  /** Host folders sandboxes never see, beyond the data dir (the platform's data folder, say). */
  sandboxHide: z
    .string()
    .default('')
    .transform((s) => s.split(',').filter(Boolean).map((p) => resolve(p))),
})
export type AgentConfigInput = z.input<typeof ZAgentConfig>
export type AgentConfig = z.output<typeof ZAgentConfig>

export const USAGE = `Usage: alveary-agent [options]
       alveary-agent cleanup [options]

Runs the Alveary node agent: connects to the control plane and runs the instances it assigns.
Every option can also come from the environment variable shown; the flag wins.

cleanup retires a node: with the options the agent ran with (--data-dir, --name,
--docker-host, --network-prefix), once that agent is stopped, it stops and removes what
the agent created here (instances, containers, HAProxy, the overlay's namespaces, links,
nftables table and /etc/netns folders, the namespaces of sandboxed instances on host
networking and their nftables table, the data folder) and prints each; local volumes
that still hold data and shared volumes are kept.

  --server <url>         control plane URL, ws(s):// or http(s)://  [ALVEARY_SERVER]
                         (default ws://127.0.0.1:4000; the agent connects to <url>/agent)
  --join-token <token>   token to join the cluster the first time   [ALVEARY_JOIN_TOKEN]
  --name <name>          node name, a lowercase DNS label            [ALVEARY_NODE_NAME]
                         (default: the hostname, lowercased)
  --address <addr>       address where instance ports are reachable  [ALVEARY_NODE_ADDRESS]
                         (default 127.0.0.1)
  --labels <k=v,...>     node labels                                 [ALVEARY_NODE_LABELS]
  --cpu-millis <n>       CPU capacity offered, in millicores         [ALVEARY_NODE_CPU_MILLIS]
                         (default: number of CPUs x 1000)
  --memory-mb <n>        memory capacity offered, in MiB             [ALVEARY_NODE_MEMORY_MB]
                         (default: total memory)
  --port-range <a-b>     host ports for instances (several agents    [ALVEARY_NODE_PORT_RANGE]
                         on one machine need disjoint ranges)
  --data-dir <dir>       credential, instance state and logs         [ALVEARY_AGENT_DATA_DIR]
                         (default ./.data/agent-<name>)
  --stop-on-exit         stop all instances on SIGINT/SIGTERM and remove the node's
                         network namespaces and nftables tables; without it they keep
                         running and the next agent re-adopts them   [ALVEARY_STOP_ON_EXIT=1]
  --exit-grace <s>       with --stop-on-exit: the longest an instance [ALVEARY_EXIT_GRACE]
                         may take to stop on exit, whatever its app's
                         stop grace (default 10)
  --docker-host <url>    Docker Engine API of Docker or Podman for the docker driver:
                         unix:///path or tcp://host:port, or none    [DOCKER_HOST]
                         (default: /var/run/docker.sock, else /run/podman/podman.sock,
                         else $XDG_RUNTIME_DIR/podman/podman.sock, the first that exists)
  --metrics-interval <s> seconds between per-instance metrics       [ALVEARY_METRICS_INTERVAL]
                         (default 10)
  --metrics-listen <host:port>  serve the agent's own Prometheus      [ALVEARY_AGENT_METRICS_LISTEN]
                         metrics at GET /metrics (DNS responder); default off
  --log-max-mb <n>       an instance's stdout/stderr file above this  [ALVEARY_LOG_MAX_MB]
                         is rotated, one old file kept (default 10)
  --instance-retention-hours <h>  folders (logs) of instances gone  [ALVEARY_INSTANCE_RETENTION_HOURS]
                         from this node are deleted after this long (default 24)
  --shared-volumes <dir> storage every node mounts (NFS or the like) [ALVEARY_SHARED_VOLUMES]
                         where shared volumes live; without it the node offers local
                         volumes only (kept in <data-dir>/volumes)
  --lb-driver <d>        load-balancer data plane for load-balancing [ALVEARY_LB_DRIVER]
                         nodes: auto (haproxy when installed, else the
                         built-in proxy), haproxy, builtin or none
  --network <mode>       tenant networks: auto|overlay|host          [ALVEARY_NETWORK]
                         (default auto: overlay when root with iproute2 and
                         nftables and --address is this node's IPv4, else host)
  --network-prefix <p>   prefix of the namespaces, links and nftables  [ALVEARY_NETWORK_PREFIX]
                         table the overlay creates (1-4 chars; default
                         derived from the data dir, e.g. a3kq)
  --sandbox <mode>       process instances in a sandbox: auto|on|off  [ALVEARY_SANDBOX]
                         (default auto: when root with bubblewrap and memory/cpu/pids
                         cgroups, else unsandboxed with a warning: trusted tenants only)
  --sandbox-pids-max <n> threads and processes per sandboxed instance [ALVEARY_SANDBOX_PIDS_MAX]
                         (default 1024)
  --sandbox-hide <dirs>  comma-separated host folders no sandbox sees, [ALVEARY_SANDBOX_HIDE]
                         beyond the data dir
  --log-level <level>    ${LOG_LEVELS.join('|')} (default info)  [ALVEARY_LOG_LEVEL]
  -h, --help             show this help
  -v, --version          print the agent version

Exit codes: 0 normal stop, 2 bad configuration or protocol version mismatch with the server
(cleanup: 2 when an agent still runs on the data folder).
`

export type ParseResult =
  | { kind: 'config'; config: AgentConfig }
  | { kind: 'help' }
  | { kind: 'version' }
  | { kind: 'error'; message: string }

const FLAG_NAMES = {
  server: 'server',
  joinToken: 'join-token',
  name: 'name',
  address: 'address',
  labels: 'labels',
  cpuMillis: 'cpu-millis',
  memoryMb: 'memory-mb',
  portRange: 'port-range',
  dataDir: 'data-dir',
  stopOnExit: 'stop-on-exit',
  exitGraceSeconds: 'exit-grace',
  logLevel: 'log-level',
  dockerHost: 'docker-host',
  metricsIntervalSeconds: 'metrics-interval',
  metricsListen: 'metrics-listen',
  logMaxMb: 'log-max-mb',
  instanceRetentionHours: 'instance-retention-hours',
  sharedVolumes: 'shared-volumes',
  lbDriver: 'lb-driver',
  network: 'network',
  networkPrefix: 'network-prefix',
  sandbox: 'sandbox',
  sandboxPidsMax: 'sandbox-pids-max',
  sandboxHide: 'sandbox-hide',
} as const

/** Parses argv (without node and script) and env into a validated config. Never throws, never exits. */
export function parseConfig(argv: readonly string[], env: Record<string, string | undefined> = process.env): ParseResult {
  let values: Record<string, string | boolean | undefined>
  try {
    ;({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        server: { type: 'string' },
        'join-token': { type: 'string' },
        name: { type: 'string' },
        address: { type: 'string' },
        labels: { type: 'string' },
        'cpu-millis': { type: 'string' },
        'memory-mb': { type: 'string' },
        'port-range': { type: 'string' },
        'data-dir': { type: 'string' },
        'stop-on-exit': { type: 'boolean' },
        'exit-grace': { type: 'string' },
        'log-level': { type: 'string' },
        'docker-host': { type: 'string' },
        'metrics-interval': { type: 'string' },
        'metrics-listen': { type: 'string' },
        'log-max-mb': { type: 'string' },
        'instance-retention-hours': { type: 'string' },
        'shared-volumes': { type: 'string' },
        'lb-driver': { type: 'string' },
        network: { type: 'string' },
        'network-prefix': { type: 'string' },
        sandbox: { type: 'string' },
        'sandbox-pids-max': { type: 'string' },
        'sandbox-hide': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    }))
  } catch (err) {
    return { kind: 'error', message: (err as Error).message }
  }
  if (values.help) return { kind: 'help' }
  if (values.version) return { kind: 'version' }

  const str = (flag: string, envName: string): string | undefined => {
    const v = values[flag]
    if (typeof v === 'string') return v
    const e = env[envName]
    return e === undefined || e === '' ? undefined : e
  }
  const name = str('name', 'ALVEARY_NODE_NAME') ?? hostname().toLowerCase()
  const envStop = env.ALVEARY_STOP_ON_EXIT
  const input = {
    server: str('server', 'ALVEARY_SERVER') ?? 'ws://127.0.0.1:4000',
    joinToken: str('join-token', 'ALVEARY_JOIN_TOKEN'),
    name,
    address: str('address', 'ALVEARY_NODE_ADDRESS') ?? '127.0.0.1',
    labels: str('labels', 'ALVEARY_NODE_LABELS') ?? '',
    cpuMillis: str('cpu-millis', 'ALVEARY_NODE_CPU_MILLIS') ?? Math.max(1, cpus().length) * 1000,
    memoryMb: str('memory-mb', 'ALVEARY_NODE_MEMORY_MB') ?? Math.floor(totalmem() / 1024 / 1024),
    portRange: str('port-range', 'ALVEARY_NODE_PORT_RANGE'),
    dataDir: str('data-dir', 'ALVEARY_AGENT_DATA_DIR') ?? `./.data/agent-${name}`,
    stopOnExit: values['stop-on-exit'] === true || envStop === '1' || envStop === 'true',
    exitGraceSeconds: str('exit-grace', 'ALVEARY_EXIT_GRACE'),
    logLevel: str('log-level', 'ALVEARY_LOG_LEVEL') ?? 'info',
    dockerHost: str('docker-host', 'DOCKER_HOST'),
    metricsIntervalSeconds: str('metrics-interval', 'ALVEARY_METRICS_INTERVAL'),
    metricsListen: str('metrics-listen', 'ALVEARY_AGENT_METRICS_LISTEN'),
    logMaxMb: str('log-max-mb', 'ALVEARY_LOG_MAX_MB'),
    instanceRetentionHours: str('instance-retention-hours', 'ALVEARY_INSTANCE_RETENTION_HOURS'),
    sharedVolumes: str('shared-volumes', 'ALVEARY_SHARED_VOLUMES'),
    lbDriver: str('lb-driver', 'ALVEARY_LB_DRIVER'),
    network: str('network', 'ALVEARY_NETWORK') ?? 'auto',
    networkPrefix: str('network-prefix', 'ALVEARY_NETWORK_PREFIX'),
    sandbox: str('sandbox', 'ALVEARY_SANDBOX'),
    sandboxPidsMax: str('sandbox-pids-max', 'ALVEARY_SANDBOX_PIDS_MAX'),
    sandboxHide: str('sandbox-hide', 'ALVEARY_SANDBOX_HIDE'),
  }
  const parsed = ZAgentConfig.safeParse(input)
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => {
      const key = i.path[0] as keyof typeof FLAG_NAMES | undefined
      const flag = key ? `--${FLAG_NAMES[key]}` : 'config'
      const hint = key === 'name' && !str('name', 'ALVEARY_NODE_NAME') ? ` (the hostname "${name}" is not usable; pass --name)` : ''
      return `${flag}: ${i.message}${hint}`
    })
    return { kind: 'error', message: lines.join('\n') }
  }
  return { kind: 'config', config: parsed.data }
}
