import { mkdtemp, readFile, rm } from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import type { Agent } from '@alveary/agents'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { instanceContainers, removeNodeContainers, TEST_IMAGE, testEngine, type Engine } from '../../../packages/agents/test/engine'
import { addMember, callerFor, OPERATOR, startInProcessAgent, startTestBff, waitFor, type TestBff } from './harness'

// Image apps end to end: API → scheduler → agent's docker driver → Podman/Docker, and back.
const engine: Engine | null = await testEngine()
const NODE = `docker-itest-${process.pid}`
let bff: TestBff
let agent: Agent
let dataDir: string
let joinToken: string
let tenantId: string
type Caller = Awaited<ReturnType<typeof callerFor>>
let dev: Caller

const startAgent = () => startInProcessAgent({ server: bff.url, joinToken, name: NODE, dataDir, dockerHost: engine!.host })
// httpd serving a page that names the instance; prints a line so there is something in the logs.
const web = {
  driver: 'docker' as const,
  image: TEST_IMAGE,
  command: 'sh',
  args: ['-c', 'mkdir -p /www && echo "hello from $ALVEARY_INSTANCE_ID" > /www/index.html && echo "serving on 8080" && exec httpd -f -p 8080 -h /www'],
  ports: [{ name: 'http', containerPort: 8080 }],
  cpuMillis: 100,
  memoryMb: 32,
}

describe.skipIf(!engine)('docker driver through the platform', () => {
  beforeAll(async () => {
    bff = await startTestBff()
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'alveary-docker-'))
    const op = await callerFor(bff, OPERATOR.email, OPERATOR.password)
    joinToken = (await op.joinTokens.create({ description: 'docker', ttlHours: 1, uses: 5 })).token
    tenantId = (await op.tenants.create({ slug: 'dock', name: 'Dock' })).id
    await addMember(bff, op, tenantId, { email: 'dev@dock.test', name: 'Dev', password: 'dev-password', role: 'owner' })
    dev = await callerFor(bff, 'dev@dock.test', 'dev-password')
    agent = await startAgent()
    const node = await waitFor('node ready', async () => (await op.nodes.list()).find((n) => n.name === NODE && n.state === 'ready'))
    expect(node.drivers).toContain('docker')
    // The node says whether container root is remapped: by the engine itself (its /info), or per
    // container where rootful Podman has an id range for `containers` (.ci/run gives CI's one).
    const security = ((await engine!.docker.info()) as { SecurityOptions?: string[] }).SecurityOptions ?? []
    const rootless = security.some((o) => o.split(',').includes('name=rootless'))
    const range = async (file: string) => /^containers:\d+:[1-9]/m.test(await readFile(file, 'utf8').catch(() => ''))
    if (rootless || security.some((o) => o.split(',').includes('name=userns'))) expect(node.containers).toEqual({ engine: engine!.engine, userns: true, usernsMode: 'engine', rootless })
    else if (engine!.engine === 'podman' && (await range('/etc/subuid')) && (await range('/etc/subgid'))) expect(node.containers).toEqual({ engine: 'podman', userns: true, usernsMode: 'auto', rootless: false })
    else expect(node.containers).toEqual({ engine: engine!.engine, userns: false, rootless: false, reason: expect.any(String) })
  })
  afterAll(async () => {
    await agent?.shutdown({ stopInstances: true })
    if (engine) await removeNodeContainers(engine.docker, NODE)
    await bff?.stop()
    await bff?.dropDatabase()
    if (dataDir) await rm(dataDir, { recursive: true, force: true })
  })

  const app = (appId: string) => dev.apps.get({ tenantId, appId })
  const containerOf = async (instanceId: string) => (await instanceContainers(engine!.docker, instanceId))[0]
  let appId: string

  it('runs 2 replicas reachable from the host, with the memory limit applied and logs collected', async () => {
    appId = (await dev.apps.create({ tenantId, name: 'busy', replicas: 2, spec: web })).id
    const d = await waitFor('2 running', async () => {
      const d = await app(appId)
      return d.instances.filter((i) => i.state === 'running').length === 2 && d
    }, 30_000)
    for (const i of d.instances) {
      const body = await waitFor('answer', async () => (await fetch(i.url!)).text())
      expect(body).toContain(`hello from ${i.id}`)
      const info = await engine!.docker.getContainer((await containerOf(i.id))!.Id).inspect()
      expect(info.HostConfig.Memory).toBe(32 * 1024 * 1024)
    }
    const lines = await waitFor('logs', async () => {
      const l = await dev.logs.list({ tenantId, appId })
      return l.filter((x) => x.line.includes('serving on 8080')).length === 2 && l
    }, 15_000)
    expect(new Set(lines.map((l) => l.instanceId)).size).toBe(2)
  })

  it('restarts a container killed behind the agent’s back', async () => {
    const victim = (await app(appId)).instances[0]!
    await engine!.docker.getContainer((await containerOf(victim.id))!.Id).kill()
    const after = await waitFor('restarted', async () => {
      const i = (await app(appId)).instances.find((x) => x.id === victim.id)!
      return i.restarts >= 1 && i.state === 'running' && i
    }, 20_000)
    expect(after.restarts).toBeGreaterThanOrEqual(1)
  })

  it('re-adopts running containers after an agent restart (same container ids)', async () => {
    const ids = async () => Promise.all((await app(appId)).instances.map(async (i) => (await containerOf(i.id))!.Id))
    const before = await ids()
    await agent.shutdown({ stopInstances: false })
    agent = await startAgent()
    await waitFor('reconnected', async () => agent.appliedGeneration > 0)
    // The desired state is applied: whatever the agent would do about it is done.
    await agent.settled()
    expect(await ids()).toEqual(before)
    expect((await app(appId)).instances.every((i) => i.state === 'running')).toBe(true)
  })

  it('reports an unknown image as a clear instance error, not a crash loop', async () => {
    const bad = await dev.apps.create({ tenantId, name: 'ghost', replicas: 1, spec: { ...web, image: 'alveary.invalid/nope:1' } })
    const i = await waitFor('failed', async () => (await app(bad.id)).instances.find((x) => x.state === 'failed' && x.message))
    expect(i.message).toMatch(/alveary.invalid\/nope:1/)
    await dev.apps.delete({ tenantId, appId: bad.id })
  })

  it('reports a host port already in use, leaving other instances alone', async () => {
    const blocker = net.createServer()
    const ports = (await app(appId)).instances.map((i) => Object.values(i.hostPorts)[0]!)
    const next = Math.max(...ports) + 1
    await new Promise<void>((r) => blocker.listen(next, '0.0.0.0', () => r()))
    try {
      const clash = await dev.apps.create({ tenantId, name: 'clash', replicas: 1, spec: web })
      const i = await waitFor('port error', async () => {
        const x = (await app(clash.id)).instances[0]
        return x && Object.values(x.hostPorts)[0] === next && x.state !== 'running' && x.message ? x : null
      }, 20_000)
      expect(i.message).toMatch(/port|address already in use/i)
      expect((await app(appId)).instances.every((x) => x.state === 'running')).toBe(true)
      await dev.apps.delete({ tenantId, appId: clash.id })
    } finally {
      blocker.close()
    }
  })

  it('rejects an image name with invalid characters at the API, creating nothing', async () => {
    await expect(dev.apps.create({ tenantId, name: 'badimg', replicas: 1, spec: { ...web, image: 'Bad Image!' } })).rejects.toThrow(/Not a valid image reference/)
    // By name, not by count: the app the test before deleted may still be leaving the list.
    expect((await dev.apps.list({ tenantId })).map((a) => a.name)).not.toContain('badimg')
  })

  it('deletes the app: its containers are gone', async () => {
    const instanceIds = (await app(appId)).instances.map((i) => i.id)
    await dev.apps.delete({ tenantId, appId })
    await waitFor('app removed', async () => !(await dev.apps.list({ tenantId })).some((a) => a.id === appId), 30_000)
    await waitFor('containers gone', async () => (await Promise.all(instanceIds.map(containerOf))).every((c) => !c), 15_000)
  })
})
