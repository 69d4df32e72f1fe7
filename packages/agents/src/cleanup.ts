/**
 * `alveary-agent cleanup`: retires a node. Run with the agent's own flags (same --data-dir,
 * --name, --docker-host, --network-prefix) once the agent is stopped and the node drained: it
 * stops and removes what that agent created on the machine, and nothing else —
 *   instances (process groups or sandbox cgroups, their watchdogs, containers labelled with the node),
 *   the HAProxy it ran for load balancers,
 *   the overlay: namespaces, links, the nftables table and /etc/netns folders with its prefix,
 *   the isolated namespaces of sandboxed host-networking instances and their nftables table,
 *   the data folder (credential, state, logs), except local volumes that still hold data.
 * Shared volumes live on shared storage other nodes use: untouched. The kernel settings it
 * turned on (ip_forward) stay, as another workload of the machine may rely on them.
 */
import { readFileSync } from 'node:fs'
import { readdir, readFile, rm, stat } from 'node:fs/promises'
import path from 'node:path'
import type Docker from 'dockerode'
import type { Logger } from 'pino'
import type { AgentConfig } from './config'
import { DataDirLocked, lockDataDir } from './data-lock'
import { stopWatchdog } from './fence/watchdog'
import { createTools } from './network/exec'
import { createIsolation } from './network/isolated'
import { defaultPrefix, overlayNames, type OverlayNames } from './network/names'
import { createOverlay } from './network/overlay'
import { LABELS } from './runtime/docker/config'
import { createDockerDriver } from './runtime/docker/driver'
import { defaultDockerHost, probeDocker } from './runtime/docker/endpoint'
import { createProcessDriver, instanceDir } from './runtime/process/driver'
import type { RuntimeDriver } from './runtime/types'
import { detectSandbox } from './sandbox/detect'
import { createStateStore } from './state-store'

export class CleanupRefused extends Error {
  override name = 'CleanupRefused'
}

/** What was removed and what was kept on purpose, one line each, for the operator. */
export async function cleanupNode(config: AgentConfig, log: Logger): Promise<{ removed: string[]; kept: string[] }> {
  const removed: string[] = []
  const kept: string[] = []
  const hasData = await stat(config.dataDir).then((s) => s.isDirectory(), () => false)
  let lock: Awaited<ReturnType<typeof lockDataDir>> | null = null
  if (hasData) {
    try {
      lock = await lockDataDir(config.dataDir)
    } catch (err) {
      if (err instanceof DataDirLocked) throw new CleanupRefused(`${err.message}; stop that agent first`)
      throw err
    }
  }

  // Instances: every state file's, then any container still labelled with this node.
  // With the agent's sandbox, a stop kills the instance's whole cgroup and a release removes it.
  const { sandbox } = await detectSandbox(config, log)
  const drivers: Partial<Record<'process' | 'docker', RuntimeDriver>> = { process: createProcessDriver({ dataDir: config.dataDir, sandbox }) }
  const dockerHost = config.dockerHost === 'none' ? null : (config.dockerHost ?? (await defaultDockerHost()))
  let engine: Docker | null = null
  if (dockerHost) {
    const probe = await probeDocker(dockerHost)
    if (probe.ok) {
      engine = probe.docker
      drivers.docker = createDockerDriver({ docker: probe.docker, nodeName: config.name, logger: log, engine: probe.engine })
    }
    else kept.push(`containers: the engine at ${dockerHost} does not answer (${probe.reason}); remove containers labelled alveary.node=${config.name} by hand`)
  }
  if (hasData) {
    for (const rec of await createStateStore(config.dataDir, (msg) => log.warn(msg)).loadAll()) {
      const driver = drivers[rec.driver]
      const handle = await driver?.adopt(rec)
      if (handle) {
        await handle.stop(rec.stopGraceSeconds)
        removed.push(`instance ${rec.instanceId} (${rec.driver} ${handle.id}) stopped`)
      }
      await driver?.release(rec.instanceId)
      await stopWatchdog(instanceDir(config.dataDir, rec.instanceId))
    }
  }
  if (engine && drivers.docker?.removeOrphans) {
    const left = await engine.listContainers({ all: true, filters: { label: [`${LABELS.node}=${config.name}`] } })
    await drivers.docker.removeOrphans(new Set())
    removed.push(...left.map((c) => `container ${c.Names[0]?.replace(/^\//, '') ?? c.Id.slice(0, 12)} removed`))
  }

  if (hasData && (await stopHaproxy(path.join(config.dataDir, 'haproxy', 'haproxy.pid')))) removed.push('HAProxy of the load balancers stopped')

  // The network: a pass towards "nothing desired" of each of the agent's network modules removes
  // exactly what carries the prefix — the isolated namespaces (their instances stopped above), then the overlay.
  const prefix = config.networkPrefix ?? defaultPrefix(config.dataDir)
  if (process.getuid?.() === 0) {
    const names = overlayNames(prefix)
    const tools = createTools()
    const before = await ours(tools, names)
    await createIsolation({ names, tools, log, resyncMs: 3_600_000 }).close(true)
    await createOverlay({ names, vtep: config.address, tools, log, resyncMs: 3_600_000 }).close(true)
    // Left by a probe that was interrupted (the pass only knows the names it creates).
    await tools.run('ip', ['netns', 'del', `${prefix}-probe`]).catch(() => {})
    const after = await ours(tools, names)
    removed.push(...before.filter((x) => !after.includes(x)).map((x) => `network ${x}`))
    if (after.length) kept.push(`network: could not remove ${after.join(', ')}`)
  } else {
    kept.push(`network: not root, so nothing of an overlay (prefix ${prefix}) was looked for`)
  }

  if (hasData) {
    const volumes = path.join(config.dataDir, 'volumes')
    const withData = (await readdir(volumes).catch(() => [])).length > 0
    for (const entry of await readdir(config.dataDir)) {
      if (entry === 'agent.lock' || (entry === 'volumes' && withData)) continue
      await rm(path.join(config.dataDir, entry), { recursive: true, force: true })
    }
    await lock?.release()
    if (withData) kept.push(`local volumes in ${volumes}: their data may be the only copy; delete the folder once it is safe`)
    else {
      await rm(config.dataDir, { recursive: true, force: true })
      removed.push(`data folder ${config.dataDir}`)
    }
  }
  return { removed, kept }
}

/** Namespaces, node links, the nftables tables (overlay and isolated namespaces) and /etc/netns folders carrying the prefix. */
async function ours(tools: ReturnType<typeof createTools>, names: OverlayNames): Promise<string[]> {
  const { prefix } = names
  const out: string[] = []
  for (const n of await tools.json<Array<{ name: string }>>('ip', ['-j', 'netns', 'list']).catch(() => [])) if (n.name.startsWith(`${prefix}-`)) out.push(`namespace ${n.name}`)
  for (const l of await tools.json<Array<{ ifname: string }>>('ip', ['-j', 'link', 'show']).catch(() => [])) if (l.ifname.startsWith(prefix)) out.push(`link ${l.ifname}`)
  const tables = (await tools.run('nft', ['list', 'tables']).catch(() => '')).split('\n').map((l) => l.trim())
  for (const t of [names.nodeTable, names.isolatedTable]) if (tables.includes(`table inet ${t}`)) out.push(`nftables table inet ${t}`)
  for (const d of await readdir('/etc/netns').catch(() => [])) if (d.startsWith(`${prefix}-`)) out.push(`/etc/netns/${d}`)
  return out
}

/** Stops the HAProxy master of a pid file (it stops its workers), if that pid is HAProxy. */
async function stopHaproxy(pidFile: string): Promise<boolean> {
  const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim())
  if (!(pid > 0) || !cmdline(pid).includes('haproxy')) return false
  process.kill(pid, 'SIGTERM')
  for (let k = 0; k < 50 && cmdline(pid).includes('haproxy'); k++) await new Promise((r) => setTimeout(r, 100))
  if (cmdline(pid).includes('haproxy')) process.kill(pid, 'SIGKILL')
  return true
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8')
  } catch {
    return ''
  }
}
