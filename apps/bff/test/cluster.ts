/**
 * Real agent processes for the volume and move tests: each node is an `alveary-agent` child
 * process with its own data folder and host-port range; all share one "shared storage" folder.
 * Agents can be killed (SIGKILL: their instances keep running, as on a real crash) and started
 * again on the same data folder. stopAll() leaves the machine as it was, whatever the test did:
 * every node is retired as an operator would (`alveary-agent cleanup`), then checked.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import pino from 'pino'
import { cleanupNode, defaultPrefix, parseConfig, type AgentConfig } from '@alveary/agents'
import { machineLeftovers } from '../../../packages/agents/test/netns'
import { repoRoot } from '../src/config'

export interface TestCluster {
  dir: string
  sharedDir: string
  start(name: string): ChildProcess
  kill(name: string, signal?: NodeJS.Signals): Promise<void>
  /** Stops every agent, then removes what the nodes left on the machine (an agent killed with SIGKILL leaves its instances); throws when that took more than `alveary-agent cleanup`. */
  stopAll(): Promise<void>
  /** A node's network prefix: its namespaces, links, nftables tables and cgroups carry it. */
  prefix(name: string): string
  dataDir(name: string): string
}

/** dockerHost: the container engine the nodes run image apps on (default none: process apps only). */
export async function createCluster(o: { server: () => string; joinToken: () => string; names: string[]; labels?: Record<string, string>; dockerHost?: string }): Promise<TestCluster> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'alveary-moves-'))
  const sharedDir = path.join(dir, 'shared')
  await mkdir(sharedDir)
  // Disjoint host-port ranges, below Linux's ephemeral ports.
  const base = 21_000 + Math.floor(Math.random() * 50) * 200
  const agents = new Map<string, ChildProcess>()
  const range = (name: string) => {
    const i = o.names.indexOf(name)
    return `${base + i * 50}-${base + i * 50 + 49}`
  }
  /** A node's agent configuration as far as `alveary-agent cleanup` needs it. */
  const nodeConfig = (name: string) => retireConfig(path.join(dir, name), name, o.dockerHost)
  const kill = (name: string, signal: NodeJS.Signals = 'SIGKILL') =>
    new Promise<void>((resolve) => {
      const c = agents.get(name)
      if (!c || c.exitCode !== null || c.signalCode !== null) return resolve()
      c.once('exit', () => resolve())
      c.kill(signal)
    })
  return {
    dir,
    sharedDir,
    dataDir: (name) => path.join(dir, name),
    start(name) {
      const child = spawn(
        process.execPath,
        [
          path.join(repoRoot, 'packages/agents/bin/alveary-agent.mjs'),
          ...['--server', o.server(), '--join-token', o.joinToken(), '--name', name, '--data-dir', path.join(dir, name)],
          ...['--cpu-millis', '2000', '--memory-mb', '2048', '--port-range', range(name), '--shared-volumes', sharedDir, '--docker-host', o.dockerHost ?? 'none', '--network', 'host', '--log-level', 'warn', '--stop-on-exit'],
          ...(o.labels?.[name] ? ['--labels', o.labels[name]] : []),
        ],
        { cwd: repoRoot, stdio: ['ignore', 'ignore', 'inherit'] },
      )
      agents.set(name, child)
      return child
    },
    kill,
    async stopAll() {
      await Promise.all([...agents.keys()].map((n) => kill(n, 'SIGTERM')))
      // Agents a test killed (SIGKILL) left their instances running (by design), with their watchdogs,
      // sandbox cgroups and isolated network namespaces: `alveary-agent cleanup` removes all of it.
      const left: string[] = []
      try {
        for (const name of o.names) left.push(...(await retireNode(nodeConfig(name))).map((x) => `${name}: ${x}`))
      } finally {
        await rm(dir, { recursive: true, force: true })
      }
      if (left.length) throw new Error(`the cluster's nodes left behind (removed now): ${left.join('; ')}`)
    },
    prefix: (name) => defaultPrefix(nodeConfig(name).dataDir),
  }
}

const log = pino({ level: 'warn' }, pino.destination(2))

/**
 * Retires a node as an operator would (`alveary-agent cleanup` on its data folder; its agent
 * must be stopped) and returns what was still on the machine after that: instance processes and
 * anything carrying the node's network prefix. Those are removed too, so a failing test still
 * leaves the machine clean; a non-empty answer is a leak to report.
 */
export async function retireNode(config: AgentConfig): Promise<string[]> {
  const left: string[] = []
  const processes = await instanceProcesses(config.dataDir)
  await cleanupNode(config, log)
  for (const p of processes.filter((x) => alive(x.pid, x.instanceId))) {
    left.push(`process ${p.pid} of instance ${p.instanceId} still running`)
    killGroup(p.pid)
  }
  for (const x of machineLeftovers(defaultPrefix(config.dataDir))) {
    left.push(x.what)
    x.remove()
  }
  return left
}

/** The configuration `alveary-agent cleanup` needs for a node's data folder. */
export function retireConfig(dataDir: string, name: string, dockerHost = 'none'): AgentConfig {
  const parsed = parseConfig(['--data-dir', dataDir, '--name', name, '--docker-host', dockerHost, '--log-level', 'warn'])
  if (parsed.kind !== 'config') throw new Error(`node ${name}: ${parsed.kind === 'error' ? parsed.message : parsed.kind}`)
  return parsed.config
}

/** Pids of a node's instances and their watchdogs, from its data folder. */
async function instanceProcesses(dataDir: string): Promise<Array<{ pid: number; instanceId: string }>> {
  const out: Array<{ pid: number; instanceId: string }> = []
  const root = path.join(dataDir, 'instances')
  for (const instanceId of await readdir(root).catch(() => [] as string[])) {
    const state = JSON.parse(await readFile(path.join(root, instanceId, 'state.json'), 'utf8').catch(() => '{}')) as { pid?: number | null }
    const watchdog = Number(await readFile(path.join(root, instanceId, 'watchdog.pid'), 'utf8').catch(() => '0'))
    for (const pid of [state.pid ?? 0, watchdog]) if (pid > 0) out.push({ pid, instanceId })
  }
  return out
}

/** Still running (not a zombie) and still the instance's: its command line or environment names it (pids are reused). */
function alive(pid: number, instanceId: string): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) return false
    return [`/proc/${pid}/cmdline`, `/proc/${pid}/environ`].some((f) => readFileSync(f, 'utf8').includes(instanceId))
  } catch {
    return false
  }
}

/** SIGKILL to a process and its group (an unsandboxed instance is a group), where it is still there. */
function killGroup(pid: number): void {
  for (const target of [-pid, pid]) {
    try {
      process.kill(target, 'SIGKILL')
    } catch {
      /* not a group leader, or gone */
    }
  }
}
