import { randomUUID } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import type { TDesired, TDesiredInstance } from '@alveary/core/protocol'
import { createAgent, type Agent } from '../src/agent'
import { removeNodeContainers, testEngine, TEST_IMAGE } from './engine'
import { fakeServer, type Peer } from './fake-server'
import { instanceDir } from '../src/runtime/process/driver'
import { agentConfig, killGroup, makeInstance, nodeScript, tempDir, testLogger, waitFor } from './helpers'

const engine = await testEngine()

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

/** Every line an instance produced as the server received it, in order. */
function linesOf(peers: Peer[], instanceId: string, stream?: 'stdout' | 'stderr'): string[] {
  return peers.flatMap((p) => p.all('logs').flatMap((f) => f.entries.filter((e) => e.instanceId === instanceId && (!stream || e.stream === stream)).map((e) => e.line)))
}
/** The counters of "out N" lines. */
const counters = (lines: string[]) => lines.flatMap((l) => (/^out (\d+)$/.exec(l) ? [Number(l.slice(4))] : []))

function startAgent(dataDir: string, server: string, node: string, docker: boolean): Agent {
  const agent = createAgent(agentConfig(dataDir, { server, name: node, joinToken: 'join-token-0123456789', dockerHost: docker ? engine!.host : 'none' }), {
    logger: testLogger,
    reconnectBackoff: { baseMs: 50, capMs: 200 },
    metricsIntervalMs: 300,
    logFlushMs: 100,
  })
  cleanups.push(() => agent.shutdown({ stopInstances: false }))
  return agent
}

/** An agent welcomed by the fake server (first peer) with a credential and the desired state, once the process instance runs. */
async function firstAgent(dataDir: string, server: Awaited<ReturnType<typeof fakeServer>>, node: string, docker: boolean, nodeId: string, desired: TDesired, processId: string) {
  const agent = startAgent(dataDir, server.url, node, docker)
  await agent.start()
  const peer = await server.peer(0)
  await peer.next('hello')
  peer.send({ type: 'welcome', nodeId, credential: 'node-credential-abcdef', heartbeatIntervalMs: 200 })
  peer.send(desired)
  const { pid } = await waitFor('process running', () => agent.reports().find((r) => r.instanceId === processId && r.state === 'running'))
  cleanups.push(() => killGroup(pid))
  return { agent, peer }
}

describe('logs and metrics frames', () => {
  const withDocker = Boolean(engine)
  it(`carry the output and usage of process${withDocker ? ' and docker' : ''} instances, without resending after an agent restart`, async () => {
    const dir = await tempDir()
    cleanups.push(dir.cleanup)
    const node = `lg-${randomUUID().slice(0, 8)}`
    if (engine) cleanups.push(() => removeNodeContainers(engine.docker, node))
    const server = await fakeServer(cleanups)

    const proc = makeInstance({
      spec: nodeScript(`let i = 0; setInterval(() => { i++; console.log('out ' + i); if (i % 2 === 0) console.error('err ' + i) }, 50)`),
    })
    const instances: TDesiredInstance[] = [proc]
    let ctr: TDesiredInstance | null = null
    if (engine) {
      ctr = makeInstance({
        spec: {
          driver: 'docker',
          image: TEST_IMAGE,
          command: 'sh',
          args: ['-c', 'i=0; while true; do i=$((i+1)); echo "out $i"; if [ $((i % 2)) -eq 0 ]; then echo "err $i" >&2; fi; sleep 0.05; done'],
          ports: [],
          memoryMb: 32,
        },
      })
      instances.push(ctr)
    }
    const nodeId = randomUUID()
    const desired: TDesired = { type: 'desired', generation: 1, instances, networks: [] }

    const { agent: first, peer: p1 } = await firstAgent(dir.path, server, node, withDocker, nodeId, desired, proc.instanceId)

    // stdout and stderr, each line tagged with its stream.
    for (const inst of instances) {
      await waitFor(`output of the ${inst.spec.driver} instance`, () => counters(linesOf([p1], inst.instanceId, 'stdout')).length >= 5 && linesOf([p1], inst.instanceId, 'stderr').includes('err 4'), 15_000)
      expect(linesOf([p1], inst.instanceId, 'stdout').slice(0, 3)).toEqual(['out 1', 'out 2', 'out 3'])
      expect(linesOf([p1], inst.instanceId, 'stderr').slice(0, 2)).toEqual(['err 2', 'err 4'])
    }
    const entry = p1.all('logs')[0]!.entries[0]!
    expect(Date.parse(entry.ts)).toBeGreaterThan(Date.now() - 60_000)

    // Usage per instance.
    const metrics = await p1.next('metrics', (f) => instances.every((i) => f.instances.some((m) => m.instanceId === i.instanceId)), 0, 10_000)
    const procUsage = metrics.instances.find((m) => m.instanceId === proc.instanceId)!
    expect(procUsage.memoryMb).toBeGreaterThan(5) // a node process
    if (ctr) expect(metrics.instances.find((m) => m.instanceId === ctr!.instanceId)).toMatchObject({ cpuMillis: expect.any(Number), memoryMb: expect.any(Number) })

    // A new agent re-adopts the instances and continues the output where the old one stopped.
    await first.shutdown({ stopInstances: false })
    const before = Object.fromEntries(instances.map((i) => [i.instanceId, Math.max(...counters(linesOf([p1], i.instanceId, 'stdout')))]))
    const second = startAgent(dir.path, server.url, node, withDocker)
    await second.start()
    const p2 = await server.peer(1)
    await p2.next('hello')
    p2.send({ type: 'welcome', nodeId, heartbeatIntervalMs: 200 })
    p2.send({ ...desired, generation: 2 })
    for (const inst of instances) {
      await waitFor(`new output of the ${inst.spec.driver} instance`, () => counters(linesOf([p2], inst.instanceId, 'stdout')).some((n) => n > before[inst.instanceId]! + 5), 15_000)
      const all = counters(linesOf([p1, p2], inst.instanceId, 'stdout'))
      // Nothing twice, nothing lost: 1, 2, 3, ... across both agents.
      expect(all, `${inst.spec.driver} instance`).toEqual(all.map((_, i) => i + 1))
    }
    expect(second.reports().every((r) => r.state === 'running' && r.restarts === 0)).toBe(true)
    expect(p1.invalid.concat(p2.invalid)).toEqual([])
    await second.shutdown({ stopInstances: true })
  })

  it('lines read while the agent is not welcomed are not lost when it exits: the next agent sends them', async () => {
    const dir = await tempDir()
    cleanups.push(dir.cleanup)
    const node = `lg-${randomUUID().slice(0, 8)}`
    const server = await fakeServer(cleanups)
    const proc = makeInstance({ spec: nodeScript(`let i = 0; setInterval(() => console.log('out ' + ++i), 20)`) })
    const desired: TDesired = { type: 'desired', generation: 1, instances: [proc], networks: [] }
    const nodeId = randomUUID()
    const written = async () => counters((await readFile(join(instanceDir(dir.path, proc.instanceId), 'stdout.log'), 'utf8').catch(() => '')).split('\n'))

    const { agent: first, peer: p1 } = await firstAgent(dir.path, server, node, false, nodeId, desired, proc.instanceId)
    await waitFor('some output', () => counters(linesOf([p1], proc.instanceId)).length >= 3, 15_000)

    // The server drops the agent; it reconnects but is not welcomed: what it reads now stays buffered.
    p1.ws.close()
    const p2 = await server.peer(1)
    await p2.next('hello')
    const shipped = Math.max(...counters(linesOf([p1], proc.instanceId)))
    // Written after the drop, then 20 more lines (400 ms, more than the follower's 250 ms poll): the agent has read some of it.
    const mark = Math.max(shipped, ...(await written()))
    await waitFor('output written while not welcomed', async () => (await written()).some((n) => n > mark + 20), 15_000)
    await first.shutdown({ stopInstances: false })

    const second = startAgent(dir.path, server.url, node, false)
    await second.start()
    const p3 = await server.peer(2)
    await p3.next('hello')
    p3.send({ type: 'welcome', nodeId, heartbeatIntervalMs: 200 })
    p3.send({ ...desired, generation: 2 })
    await waitFor('new output', () => counters(linesOf([p3], proc.instanceId)).some((n) => n > shipped + 40), 15_000)
    const all = counters(linesOf([p1, p2, p3], proc.instanceId))
    // Nothing twice, nothing lost: 1, 2, 3, ... across both agents.
    expect(all).toEqual(all.map((_, i) => i + 1))
    await second.shutdown({ stopInstances: true })
  })
})
