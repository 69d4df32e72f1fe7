import { randomUUID } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, readFile, stat, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import pino from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { CloseCode, PROTOCOL_VERSION } from '@alveary/core/protocol'
import { createAgent, type Agent } from '../src/agent'
import { fakeServer as startFakeServer } from './fake-server'
import { agentConfig, freePort, httpGet, killGroup, makeInstance, nodeScript, tempDir, testLogger, waitFor } from './helpers'

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})
const fakeServer = () => startFakeServer(cleanups)

function startAgent(dataDir: string, server: string, joinToken?: string, logger = testLogger): Agent {
  const agent = createAgent(agentConfig(dataDir, { server, joinToken }), {
    logger,
    reconnectBackoff: { baseMs: 50, capMs: 200 },
  })
  cleanups.push(() => agent.shutdown({ stopInstances: true }))
  return agent
}

describe('agent against a fake server', () => {
  it('joins, stores the credential, runs desired instances and reconnects with the credential', async () => {
    const dir = await tempDir()
    cleanups.push(dir.cleanup)
    const server = await fakeServer()
    const agent = startAgent(dir.path, server.url, 'join-token-0123456789')
    await agent.start()

    const p1 = await server.peer(0)
    const hello = await p1.next('hello')
    expect(hello).toMatchObject({
      protocolVersion: PROTOCOL_VERSION,
      auth: { joinToken: 'join-token-0123456789' },
      node: { name: 'node-1', address: '127.0.0.1', labels: { zone: 'test' }, cpuMillis: 2000, memoryMb: 1024, drivers: ['process'] },
    })

    // Garbage from the server is logged and ignored, never fatal.
    p1.send('{"type":"welcome"')
    p1.send({ type: 'launch-missiles' })
    p1.send({ type: 'desired', generation: 'one', instances: [] })

    const nodeId = randomUUID()
    p1.send({ type: 'welcome', nodeId, credential: 'node-credential-abcdef', heartbeatIntervalMs: 100 })
    await p1.next('status', (f) => f.full && f.instances.length === 0)
    const credPath = join(dir.path, 'credential.json')
    const stored = await waitFor('credential file', async () => JSON.parse(await readFile(credPath, 'utf8')))
    expect(stored).toEqual({ nodeId, credential: 'node-credential-abcdef' })
    expect((await stat(credPath)).mode & 0o777).toBe(0o600)

    const port = await freePort()
    const inst = makeInstance({
      spec: {
        ...nodeScript(`require('http').createServer((q, s) => s.end('ok')).listen(process.env.PORT)`),
        ports: [{ name: 'http', containerPort: null, hostPort: port }],
      },
    })
    const mark = p1.frames.length
    p1.send({ type: 'desired', generation: 5, instances: [inst] })
    await p1.next('status', (f) => f.full && f.instances.length === 1, mark)
    const update = await p1.next('status', (f) => !f.full && f.instances.some((i) => i.state === 'running'), mark)
    const pid = update.instances.find((i) => i.state === 'running')!.pid!
    cleanups.push(() => killGroup(pid))
    expect(await waitFor('instance answers', () => httpGet(`http://127.0.0.1:${port}/`))).toBe('ok')
    await p1.next('heartbeat', (f) => f.appliedGeneration === 5, mark)
    expect(p1.invalid).toEqual([])

    // The server goes away: the agent reconnects with the stored credential and keeps the instance running.
    p1.ws.close(1001, 'server restart')
    const p2 = await server.peer(1)
    expect(await p2.next('hello')).toMatchObject({ auth: { nodeId, credential: 'node-credential-abcdef' } })
    expect(agent.reports()[0]).toMatchObject({ state: 'running', pid })
    p2.send({ type: 'welcome', nodeId, heartbeatIntervalMs: 100 })
    const full = await p2.next('status', (f) => f.full)
    expect(full.instances).toEqual([expect.objectContaining({ instanceId: inst.instanceId, state: 'running', pid, restarts: 0 })])

    // A rejected credential with a join token available: fall back to joining.
    p2.ws.close(CloseCode.unauthorized, 'node was deleted')
    const p3 = await server.peer(2)
    expect(await p3.next('hello')).toMatchObject({ auth: { joinToken: 'join-token-0123456789' } })

    // An empty desired state stops the instance; the change is reported.
    p3.send({ type: 'welcome', nodeId, credential: 'node-credential-ghijkl', heartbeatIntervalMs: 100 })
    await p3.next('status', (f) => f.full)
    const mark3 = p3.frames.length
    p3.send({ type: 'desired', generation: 6, instances: [] })
    await p3.next('status', (f) => !f.full && f.instances.some((i) => i.instanceId === inst.instanceId && i.state === 'stopped'), mark3)
    await waitFor('new credential stored', async () => JSON.parse(await readFile(credPath, 'utf8')).credential === 'node-credential-ghijkl')
    expect(p2.invalid.concat(p3.invalid)).toEqual([])
  })

  it('acknowledges an applied generation at once, not at the next heartbeat', async () => {
    const dir = await tempDir()
    cleanups.push(dir.cleanup)
    const server = await fakeServer()
    const agent = startAgent(dir.path, server.url, 'join-token-0123456789')
    await agent.start()
    const p = await server.peer(0)
    await p.next('hello')
    // Heartbeats every minute: an acknowledgement that waited for one would not come in this test.
    p.send({ type: 'welcome', nodeId: randomUUID(), credential: 'node-credential-abcdef', heartbeatIntervalMs: 60_000 })
    await p.next('status', (f) => f.full)
    for (const generation of [3, 4, 9]) {
      const mark = p.frames.length
      p.send({ type: 'desired', generation, instances: [] })
      await p.next('heartbeat', (f) => f.appliedGeneration === generation, mark)
    }
    // A burst: the last generation is acknowledged.
    const mark = p.frames.length
    for (const generation of [10, 11, 12]) p.send({ type: 'desired', generation, instances: [] })
    await p.next('heartbeat', (f) => f.appliedGeneration === 12, mark)
  })

  it('serves its own metrics at --metrics-listen while it runs, and stops serving them at shutdown', async () => {
    const dir = await tempDir()
    cleanups.push(dir.cleanup)
    const server = await fakeServer()
    const port = await freePort()
    const agent = createAgent(agentConfig(dir.path, { server: server.url, joinToken: 'join-token-0123456789', metricsListen: `127.0.0.1:${port}` }), { logger: testLogger })
    await agent.start()
    const body = await httpGet(`http://127.0.0.1:${port}/metrics`)
    expect(body).toContain('process_cpu_seconds_total')
    expect(body).toContain('# TYPE alveary_agent_dns_queries_total counter')
    await agent.shutdown({ stopInstances: true })
    await expect(httpGet(`http://127.0.0.1:${port}/metrics`)).rejects.toThrow()
  })

  it('keeps its data folder clean: the folder of an instance gone longer than the retention is deleted once started', async () => {
    const dir = await tempDir()
    cleanups.push(dir.cleanup)
    const old = join(dir.path, 'instances', randomUUID())
    await mkdir(old, { recursive: true })
    await writeFile(join(old, 'stdout.log'), 'last words\n')
    const t = new Date(Date.now() - 2 * 3_600_000)
    await utimes(join(old, 'stdout.log'), t, t)
    await utimes(old, t, t)
    const server = await fakeServer()
    const agent = createAgent(agentConfig(dir.path, { server: server.url, joinToken: 'join-token-0123456789', instanceRetentionHours: 1 }), { logger: testLogger, reconnectBackoff: { baseMs: 50, capMs: 200 } })
    cleanups.push(() => agent.shutdown({ stopInstances: true }))
    await agent.start()
    await waitFor('the old folder removed', async () => !existsSync(old))
  })

  it('gives up with exit code 2 when the server closes with a version mismatch', async () => {
    const dir = await tempDir()
    cleanups.push(dir.cleanup)
    const server = await fakeServer()
    const logged: string[] = []
    const agent = startAgent(dir.path, server.url, 'join-token-0123456789', pino({ level: 'info' }, { write: (line: string) => void logged.push(line) }))
    await agent.start()
    const p1 = await server.peer(0)
    await p1.next('hello')
    p1.ws.close(CloseCode.versionMismatch, 'server speaks protocol 2')
    await expect(agent.exited).resolves.toEqual({ code: 2, reason: expect.stringContaining('server speaks protocol 2') })
    // The connection decides at the close whether to come back; it decided not to, so it never will.
    expect(logged.filter((l) => l.includes('will reconnect'))).toEqual([])
    expect(server.peers).toHaveLength(1)
  })

  it('refuses to start without a credential or a join token', async () => {
    const dir = await tempDir()
    cleanups.push(dir.cleanup)
    const agent = startAgent(dir.path, 'ws://127.0.0.1:1')
    await expect(agent.start()).rejects.toThrow(/no stored credential .* no join token/)
  })
})
