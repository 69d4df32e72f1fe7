import { execFile } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { existsSync, readdirSync } from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { TDesired } from '@alveary/core/protocol'
import { createAgent } from '../src/agent'
import { lockDataDir } from '../src/data-lock'
import { createTools } from '../src/network/exec'
import { createIsolation } from '../src/network/isolated'
import { defaultPrefix, overlayNames } from '../src/network/names'
import { createOverlay } from '../src/network/overlay'
import { httpdSpec, nodeContainers, removeNodeContainers, testEngine } from './engine'
import { agentConfig, makeInstance, tempDir, testLogger, waitFor } from './helpers'
import { leftovers, machineLeftovers, makeUnderlay, overlayUnavailable, type Underlay } from './netns'

// `alveary-agent cleanup` on a retired node: what a stopped agent left (a running process
// instance, a container, the overlay's namespaces, links and nftables table, the isolated
// namespace of a sandboxed host-networking instance and its table, the data folder) is gone
// afterwards, and nothing else. The node is a namespace the test made; the CLI runs in it.
const skip = overlayUnavailable()
const engine = skip ? null : await testEngine()
const BIN = path.resolve(import.meta.dirname, '../bin/alveary-agent.mjs')

function cli(ns: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('nsenter', [`--net=/run/netns/${ns}`, '--', process.execPath, BIN, 'cleanup', ...args], { timeout: 120_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    )
  })
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

describe.skipIf(skip)('alveary-agent cleanup', () => {
  let u: Underlay
  let dir: Awaited<ReturnType<typeof tempDir>>
  const name = `cl-${randomUUID().slice(0, 8)}`
  let pid: number
  let isolatedNs = ''
  let poolNs: string[] = []

  beforeAll(async () => {
    u = makeUnderlay(1)
    dir = await tempDir()
    const n = u.nodes[0]!
    // What an agent of this node left: a process instance and a container (kept running on exit),
    // and an overlay network with an instance namespace (the overlay driven from outside the node).
    const agent = createAgent(agentConfig(dir.path, { name, network: 'host', ...(engine && { dockerHost: engine.host }) }), { logger: testLogger })
    await agent.restore()
    const proc = makeInstance({ spec: { args: ['-e', 'setInterval(() => {}, 1000)'] } })
    const ctr = engine ? [makeInstance({ spec: httpdSpec(0, { ports: [], args: ['-c', 'exec sleep 1000'] }) })] : []
    agent.applyDesired({ type: 'desired', generation: 1, instances: [proc, ...ctr], networks: [] })
    await waitFor('instances running', () => [proc, ...ctr].every((i) => agent.reports().find((r) => r.instanceId === i.instanceId)?.state === 'running'), 30_000)
    pid = agent.reports().find((r) => r.instanceId === proc.instanceId)!.pid!
    await agent.shutdown({ stopInstances: false })

    // The node's load balancers joined the network too (an address of its own, 100.64.0.9).
    const lbMember = { ip: '100.64.0.9', mac: '02:a1:64:40:00:09', node: n.ip, app: '', ordinal: 0, ready: true }
    const net = { networkId: randomUUID(), vxlanId: 4300, cidr: '100.64.0.0/24', gateway: '100.64.0.1', gatewayMac: '02:a0:00:10:c8:01', peers: [], endpoints: [lbMember], lbAddress: lbMember.ip }
    const inst = makeInstance({ interfaces: [{ networkId: net.networkId, ip: '100.64.0.2', mac: '02:a1:64:40:00:02', prefixLength: 24, gateway: '100.64.0.1' }] })
    const overlay = createOverlay({ names: overlayNames(n.prefix), vtep: n.ip, tools: createTools({ netns: n.ns }), log: testLogger, resyncMs: 3_600_000 })
    overlay.apply({ type: 'desired', generation: 1, instances: [inst], networks: [net] } satisfies TDesired)
    await overlay.prepare(inst.instanceId)
    await overlay.close()

    // An isolated namespace with its port forward and the free ones of the pool, as an agent killed with SIGKILL leaves them (no removing close).
    const isolation = createIsolation({ names: overlayNames(n.prefix), tools: createTools({ netns: n.ns }), log: testLogger, resyncMs: 3_600_000, pool: 1 })
    const sandboxed = makeInstance({ spec: { ports: [{ name: 'http', containerPort: null, hostPort: 20_080 }] } })
    isolation.apply({ type: 'desired', generation: 1, instances: [sandboxed], networks: [], loadBalancers: [] })
    isolatedNs = (await isolation.prepare(sandboxed.instanceId)).netns
    // Built once the start has settled (isolated.ts, settleMs).
    await waitFor('the pool', () => isolation.poolFree() === 1, 15_000)
    poolNs = readdirSync('/run/netns').filter((x) => x.startsWith(`${n.prefix}-s-`) && `/run/netns/${x}` !== isolatedNs)
    expect(poolNs).toHaveLength(1)
    await isolation.close()
  }, 120_000)

  afterAll(async () => {
    if (pid && alive(pid)) process.kill(-pid, 'SIGKILL')
    if (engine) await removeNodeContainers(engine.docker, name)
    // The in-process agent sandboxed its instance here under its own prefix; the CLI above retired the simulated node's.
    if (dir) for (const x of machineLeftovers(defaultPrefix(dir.path))) x.remove()
    u?.cleanup()
    await dir?.cleanup()
  })

  it('refuses while an agent holds the data folder', async () => {
    const lock = await lockDataDir(dir.path)
    try {
      const r = await cli(u.nodes[0]!.ns, ['--data-dir', dir.path, '--name', name, '--network-prefix', u.nodes[0]!.prefix, '--docker-host', 'none'])
      expect(r.code).toBe(2)
      expect(r.stderr).toMatch(/stop that agent first/)
    } finally {
      await lock.release()
    }
    expect(alive(pid)).toBe(true)
  })

  it('removes the instances, containers, the overlay and the data folder of the node, and says what it removed', async () => {
    const n = u.nodes[0]!
    expect(leftovers(n).length).toBeGreaterThan(0)
    const r = await cli(n.ns, ['--data-dir', dir.path, '--name', name, '--network-prefix', n.prefix, '--address', n.ip, '--docker-host', engine?.host ?? 'none', '--log-level', 'warn'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/^removed: instance .* \(process \d+\) stopped$/m)
    expect(r.stdout).toMatch(/^removed: network namespace .*-n4300$/m)
    expect(r.stdout).toMatch(/^removed: network namespace .*-l4300$/m)
    expect(r.stdout).toContain(`removed: network namespace ${path.basename(isolatedNs)}\n`)
    expect(r.stdout).toContain(`removed: network namespace ${poolNs[0]}\n`)
    expect(r.stdout).toContain(`removed: network nftables table inet alveary_${n.prefix}_s\n`)
    expect(r.stdout).toMatch(/^removed: data folder /m)
    if (engine) expect(r.stdout).toMatch(/^removed: instance .* \(docker [0-9a-f]+\) stopped$/m)
    await waitFor('the process is gone', () => !alive(pid), 10_000)
    expect(leftovers(n)).toEqual([])
    expect(existsSync(dir.path)).toBe(false)
    if (engine) expect(await nodeContainers(engine.docker, name)).toEqual([])
  })
})
