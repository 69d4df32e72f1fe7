/**
 * Real agent processes for the volume and move tests: each node is an `alveary-agent` child
 * process with its own data folder and host-port range; all share one "shared storage" folder.
 * Agents can be killed (SIGKILL: their instances keep running, as on a real crash) and started
 * again on the same data folder.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { repoRoot } from '../src/config'

export interface TestCluster {
  dir: string
  sharedDir: string
  start(name: string): ChildProcess
  kill(name: string, signal?: NodeJS.Signals): Promise<void>
  stopAll(): Promise<void>
  dataDir(name: string): string
}

export async function createCluster(o: { server: () => string; joinToken: () => string; names: string[]; labels?: Record<string, string> }): Promise<TestCluster> {
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
          ...['--cpu-millis', '2000', '--memory-mb', '2048', '--port-range', range(name), '--shared-volumes', sharedDir, '--docker-host', 'none', '--network', 'host', '--log-level', 'warn', '--stop-on-exit'],
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
      // Instances (and watchdogs) of killed agents keep running by design: stop what is left.
      for (const name of o.names) {
        const root = path.join(dir, name, 'instances')
        for (const id of await readdir(root).catch(() => [] as string[])) {
          const state = JSON.parse(await readFile(path.join(root, id, 'state.json'), 'utf8').catch(() => '{}')) as { pid?: number | null }
          const watchdog = Number(await readFile(path.join(root, id, 'watchdog.pid'), 'utf8').catch(() => '0'))
          for (const target of [state.pid ? -state.pid : 0, watchdog]) {
            try {
              if (target) process.kill(target, 'SIGKILL')
            } catch {
              /* gone */
            }
          }
        }
      }
      await rm(dir, { recursive: true, force: true })
    },
  }
}
