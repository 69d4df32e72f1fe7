import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { BFF_PORT } from '../env'

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')

/**
 * A node agent started by a test (the system under test already runs one, `local`), in a
 * temporary data dir. Its output is kept for failure messages. `cleanup()` stops it and
 * anything it left running (after a SIGKILL its instances keep running, detached, until a
 * returning agent stops them), then removes the data dir.
 */
export class AgentProcess {
  /** Created on the first start (test files are also loaded by the runner, just to list tests). */
  private dir: string | null = null
  private proc: ChildProcess | null = null
  private output: string[] = []

  constructor(
    readonly name: string,
    readonly portRange: { min: number; max: number },
    /** More flags for the agent (`--sandbox off`, `--labels k=v`). */
    readonly extraArgs: readonly string[] = [],
  ) {}

  get dataDir(): string {
    this.dir ??= mkdtempSync(path.join(os.tmpdir(), `alveary-e2e-${this.name}-`))
    return this.dir
  }

  get running(): boolean {
    return !!this.proc && this.proc.exitCode === null && this.proc.signalCode === null
  }

  /** The join token is needed the first time only: the agent stores its node credential. */
  start(joinToken?: string) {
    if (this.running) throw new Error(`agent ${this.name} is already running`)
    const args = [
      path.join(REPO_ROOT, 'packages/agents/bin/alveary-agent.mjs'),
      '--server', `ws://127.0.0.1:${BFF_PORT}`,
      ...(joinToken ? ['--join-token', joinToken] : []),
      '--name', this.name,
      '--port-range', `${this.portRange.min}-${this.portRange.max}`,
      '--data-dir', this.dataDir,
      '--stop-on-exit',
      // Two agents share this machine's network namespace: one VXLAN id cannot be used twice there.
      '--network', 'host',
      '--log-level', 'warn',
      ...this.extraArgs,
    ]
    const proc = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    for (const s of [proc.stdout, proc.stderr]) s?.on('data', (d: Buffer) => this.output.push(...d.toString().split('\n').filter(Boolean)))
    proc.on('exit', (code, signal) => this.output.push(`[exited: ${signal ?? code}]`))
    this.proc = proc
  }

  /** The last lines the agent printed (warnings and errors only: --log-level warn). */
  tail(lines = 30): string {
    return this.output.slice(-lines).join('\n') || '(no output)'
  }

  /** The last lines each instance of this agent wrote (its stdout/stderr files), for failure messages. */
  instanceOutput(lines = 20): string {
    const dir = this.dir && path.join(this.dir, 'instances')
    if (!dir || !existsSync(dir)) return '(no instances)'
    const out: string[] = []
    for (const id of readdirSync(dir)) {
      for (const f of ['stdout.log', 'stderr.log']) {
        try {
          const text = readFileSync(path.join(dir, id, f), 'utf8').split('\n').filter(Boolean).slice(-lines)
          if (text.length) out.push(`-- ${id} ${f}`, ...text)
        } catch {
          /* not written (yet) */
        }
      }
    }
    return out.join('\n') || '(instances wrote nothing)'
  }

  /** SIGKILL: the node goes silent as if the machine died; its instances keep running. */
  async kill(signal: NodeJS.Signals = 'SIGKILL', timeoutMs = 15_000): Promise<void> {
    const proc = this.proc
    if (!proc || !this.running) return
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
    proc.kill(signal)
    const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs)
    await exited
    clearTimeout(timer)
  }

  /** Process groups of instances this agent recorded as running (from its state files). */
  leftoverPids(): number[] {
    if (!this.dir) return []
    const dir = path.join(this.dir, 'instances')
    if (!existsSync(dir)) return []
    const pids: number[] = []
    for (const id of readdirSync(dir)) {
      try {
        const st = JSON.parse(readFileSync(path.join(dir, id, 'state.json'), 'utf8')) as { pid?: number | null }
        if (st.pid) pids.push(st.pid)
      } catch {
        /* no state file (yet) */
      }
    }
    return pids
  }

  async cleanup(): Promise<void> {
    // A graceful stop first: with --stop-on-exit the agent stops its instances itself.
    await this.kill('SIGTERM')
    for (const pid of this.leftoverPids()) {
      try {
        process.kill(-pid, 'SIGKILL') // instances run detached, each in its own process group
      } catch {
        /* already gone */
      }
    }
    // Then the node is retired as an operator would: what a killed agent left besides processes
    // (its sandboxed instances' network namespaces, nftables table, cgroups) goes too.
    if (this.dir) {
      const r = spawnSync(process.execPath, [path.join(REPO_ROOT, 'packages/agents/bin/alveary-agent.mjs'), 'cleanup', '--data-dir', this.dir, '--name', this.name, '--docker-host', 'none'], { cwd: REPO_ROOT, encoding: 'utf8' })
      if (r.status !== 0) console.warn(`alveary-agent cleanup of ${this.name} failed: ${r.stderr || r.error?.message}`)
    }
    if (this.dir) rmSync(this.dir, { recursive: true, force: true })
    this.dir = null
  }
}
