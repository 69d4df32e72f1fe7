import { execFileSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import type { TDesiredInstance } from '@alveary/core/protocol'

/** AGENT_TEST_LOG=debug npx vitest run  shows the agent's logs. */
export const testLogger = pino({ level: process.env.AGENT_TEST_LOG ?? 'silent' }, pino.destination({ dest: 2, sync: true }))

type SpecPatch = Partial<TDesiredInstance['spec']>
export function makeInstance(patch: Partial<Omit<TDesiredInstance, 'spec'>> & { spec?: SpecPatch } = {}): TDesiredInstance {
  const { spec, ...rest } = patch
  return {
    instanceId: randomUUID(),
    tenantId: '00000000-0000-4000-8000-000000000001',
    runAs: { uid: 200_001, gid: 200_001 },
    appId: '00000000-0000-4000-8000-000000000002',
    appName: 'web',
    ordinal: 0,
    desiredState: 'running',
    generation: 1,
    mounts: [],
    fence: { stopAfterDisconnect: false },
    interfaces: [],
    ...rest,
    spec: {
      driver: 'process',
      image: null,
      command: process.execPath,
      args: ['-e', 'setInterval(() => {}, 1000)'],
      env: {},
      ports: [],
      cpuMillis: 100,
      memoryMb: 64,
      restartPolicy: 'always',
      stopGraceSeconds: 2,
      ...spec,
    },
  }
}

/** A node script run with `node -e`. */
export const nodeScript = (code: string): SpecPatch => ({ command: process.execPath, args: ['-e', code] })

export async function tempDir(): Promise<{ path: string; cleanup: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), 'alveary-agent-test-'))
  return { path, cleanup: () => rm(path, { recursive: true, force: true }) }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))))
    })
  })
}

/** Polls until fn returns something truthy; fails with `what` after the timeout. */
export async function waitFor<T>(what: string, fn: () => T | Promise<T>, timeoutMs = 5000, intervalMs = 25): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const v = await fn()
      if (v) return v as NonNullable<T>
    } catch (err) {
      last = err
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`)
    await sleep(intervalMs)
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** Last resort cleanup so a failed test never leaves process groups behind. */
export function killGroup(pid: number | null | undefined): void {
  if (!pid) return
  try {
    process.kill(-pid, 'SIGKILL')
  } catch {
    // already gone
  }
}

export async function httpGet(url: string): Promise<string> {
  const res = await fetch(url)
  return res.text()
}

import { ZAgentConfig, type AgentConfig, type AgentConfigInput } from '../src/config'
import { cleanupNode } from '../src/cleanup'
import { defaultPrefix } from '../src/network/names'

/** Network prefixes of the agent configurations this test file made: test/setup.ts looks for their leftovers. */
export const configuredPrefixes = new Set<string>()

export function agentConfig(dataDir: string, over: Partial<AgentConfigInput> = {}): AgentConfig {
  const config = ZAgentConfig.parse({
    server: 'ws://127.0.0.1:1',
    name: 'node-1',
    address: '127.0.0.1',
    labels: 'zone=test',
    cpuMillis: 2000,
    memoryMb: 1024,
    dataDir,
    stopOnExit: false,
    logLevel: 'silent',
    // Tests that want the docker driver pass a docker host; the others never touch an engine.
    dockerHost: 'none',
    ...over,
  })
  configuredPrefixes.add(config.networkPrefix ?? defaultPrefix(config.dataDir))
  return config
}

/** Retires a node as an operator would (`alveary-agent cleanup`), for tests whose agents exit without stopping what they run. */
export async function retireNode(dataDir: string, over: Partial<AgentConfigInput> = {}): Promise<void> {
  await cleanupNode(agentConfig(dataDir, over), testLogger)
}

/**
 * A listener port nothing on this machine holds. 17000-19999 is below every range instances get
 * host ports from (the control plane's default 20000-29999, the test agents' ranges up to 32767,
 * the e2e slots' 11000-16799), so a scheduled instance cannot take it between this probe and the
 * test's listen.
 */
export async function freeListenerPort(): Promise<number> {
  for (;;) {
    const port = 17_000 + Math.floor(Math.random() * 3_000)
    const free = await new Promise<boolean>((resolve) => {
      const srv = createServer()
      srv.once('error', () => resolve(false))
      srv.listen(port, '0.0.0.0', () => srv.close(() => resolve(true)))
    })
    if (free) return port
  }
}

/** Whether HAProxy runs here. In CI its absence fails the file; elsewhere `otherwise` says what happens instead. */
/** True where a system tool runs; otherwise prints what is skipped and answers false (in CI, where .ci/run installs it, throws). */
export function toolHere(tool: 'haproxy' | 'rsync', otherwise: string): boolean {
  try {
    execFileSync(tool, [tool === 'haproxy' ? '-v' : '--version'], { stdio: 'ignore' })
    return true
  } catch {
    if (process.env.CI === 'true') throw new Error(`${tool} is required in CI (apt-get install ${tool})`)
    console.warn(`${tool} is not installed: ${otherwise}`)
    return false
  }
}

export const haproxyHere = (otherwise: string) => toolHere('haproxy', otherwise)

