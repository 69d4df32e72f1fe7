/**
 * The process sandbox through the API and a real agent: tenant B's "attacker" app tries to reach
 * the node, the platform and tenant A (files, processes, and over the network the node's loopback
 * services and addresses: it has a network namespace of its own); every attempt fails while A's
 * app keeps running with 0 restarts. Limits: memory (an OOM kill reported as such), pids (a fork bomb stops), cpu.
 * Needs root and bubblewrap; elsewhere skipped with the reason (with CI=true it fails).
 */
import { execFileSync } from 'node:child_process'
import net from 'node:net'
import { existsSync, readFileSync, statSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { createAgent, ZAgentConfig, type Agent } from '@alveary/agents'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { repoRoot } from '../src/config'
import { addMember, callerFor, OPERATOR, startTestBff, waitFor, type TestBff } from './harness'
import { retireConfig, retireNode } from './cluster'

function missing(): string | null {
  if (process.getuid?.() !== 0) return 'not root'
  try {
    execFileSync('bwrap', ['--version'], { stdio: 'ignore' })
  } catch {
    return 'bubblewrap is not installed (apt-get install bubblewrap)'
  }
  return null
}
const why = missing()
if (why && process.env.CI === 'true') throw new Error(`sandbox tests cannot run: ${why}`)
if (why) console.log(`skipping the sandbox tests: ${why}`)

/** Whether a TCP connection from here (the node) to host:port is accepted. */
function reachable(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port })
    const t = setTimeout(() => (s.destroy(), resolve(false)), 2000)
    s.once('connect', () => (clearTimeout(t), s.destroy(), resolve(true)))
    s.once('error', () => (clearTimeout(t), resolve(false)))
  })
}

const PIDS_MAX = 64
const APP_PIDS_MAX = 40
let bff: TestBff
let dataDir: string
let agent: Agent
type Caller = Awaited<ReturnType<typeof callerFor>>
const tenants: Record<'a' | 'b', { id: string; dev: Caller }> = {} as never

describe.skipIf(why !== null)('process sandbox', () => {
  beforeAll(async () => {
    bff = await startTestBff()
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'alveary-sandbox-'))
    const op = await callerFor(bff, OPERATOR.email, OPERATOR.password)
    const joinToken = (await op.joinTokens.create({ description: 'sandbox', ttlHours: 1, uses: 1 })).token
    for (const slug of ['a', 'b'] as const) {
      const id = (await op.tenants.create({ slug: `sbx-${slug}`, name: `Tenant ${slug}` })).id
      await addMember(bff, op, id, { email: `dev@${slug}.test`, name: 'Dev', password: 'dev-password', role: 'owner' })
      tenants[slug] = { id, dev: await callerFor(bff, `dev@${slug}.test`, 'dev-password') }
    }
    agent = createAgent(
      ZAgentConfig.parse({
        server: bff.url,
        joinToken,
        name: 'sandbox-node',
        address: '127.0.0.1',
        labels: '',
        cpuMillis: '4000',
        memoryMb: '4096',
        dataDir,
        stopOnExit: false,
        logLevel: 'silent',
        dockerHost: 'none',
        sandbox: 'on',
        sandboxPidsMax: PIDS_MAX,
      }),
      { cwd: repoRoot, restartBackoff: { baseMs: 200, capMs: 2000 } },
    )
    await agent.start()
    await waitFor('node ready', async () => (await op.nodes.list()).find((n) => n.name === 'sandbox-node' && n.state === 'ready'))
  })
  afterAll(async () => {
    await agent?.shutdown({ stopInstances: true })
    // Whatever the agent's stop left on the machine is a leak: removed, and the suite fails naming it (after the rest is stopped).
    const left = dataDir ? await retireNode(retireConfig(dataDir, 'sandbox-node')) : []
    await bff?.stop()
    await bff?.dropDatabase()
    if (dataDir) await rm(dataDir, { recursive: true, force: true })
    expect(left).toEqual([])
  })

  const running = async (tenant: 'a' | 'b', appId: string) =>
    waitFor(
      'running',
      async () => {
        const d = await tenants[tenant].dev.apps.get({ tenantId: tenants[tenant].id, appId })
        const i = d.instances.find((x) => x.state === 'running')
        if (!i?.url) return null
        return (await fetch(i.url).then((r) => r.ok, () => false)) && i
      },
      30_000,
    )

  it('an attacker of tenant B reaches nothing of the node, the platform or tenant A, and A keeps running', async () => {
    const secret = `s3cret-${Math.random().toString(36).slice(2)}`
    const victimCode = `require('fs').writeFileSync(process.env.HOME + '/secret.txt', process.env.SECRET); require('http').createServer((q, s) => s.end('victim')).listen(process.env.PORT)`
    const victim = await tenants.a.dev.apps.create({
      tenantId: tenants.a.id,
      name: 'victim',
      replicas: 1,
      spec: { command: 'node', args: ['-e', victimCode], env: { SECRET: secret }, cpuMillis: 100, memoryMb: 128 },
    })
    const attacker = await tenants.b.dev.apps.create({
      tenantId: tenants.b.id,
      name: 'attacker',
      replicas: 1,
      // Its own pids limit, below the node's.
      spec: { command: 'node', args: ['apps/bff/test/fixtures/sandbox-attacker.cjs'], cpuMillis: 100, memoryMb: 128, pidsMax: APP_PIDS_MAX },
    })
    const v = await running('a', victim.id)
    const a = await running('b', attacker.id)
    const victimPid = agent.reports().find((r) => r.instanceId === v.id)!.pid!
    const victimPort = new URL(v.url!).port
    // Services of the node, each reachable from the node itself: the BFF on loopback, PostgreSQL
    // on loopback when one runs there, and a listener on every address of the node.
    const nodeService = net.createServer((c) => c.on('error', () => {}).end('node'))
    await new Promise<void>((r) => nodeService.listen(0, '0.0.0.0', r))
    const servicePort = (nodeService.address() as net.AddressInfo).port
    const nodeAddresses = Object.values(os.networkInterfaces()).flatMap((l) => (l ?? []).filter((a) => a.family === 'IPv4' && !a.internal).map((a) => a.address))
    const services = [`127.0.0.1:${new URL(bff.url).port}`, `127.0.0.1:${servicePort}`, `169.254.0.1:${servicePort}`, ...nodeAddresses.slice(0, 2).map((a) => `${a}:${servicePort}`)]
    if (await reachable('127.0.0.1', 5432)) services.push('127.0.0.1:5432')
    for (const t of services) expect({ t, fromNode: await reachable(t.slice(0, t.lastIndexOf(':')), Number(t.slice(t.lastIndexOf(':') + 1))) }).toEqual({ t, fromNode: true })
    const q = new URLSearchParams({
      pid: String(victimPid),
      agentDir: dataDir,
      victimDir: path.join(dataDir, 'instances', v.id),
      victimPort,
      secret,
      nodeServices: services.join(','),
    })
    const r = (await (await fetch(`${a.url}?${q}`)).json()) as Record<string, unknown>
    nodeService.close()

    expect(r.uid).not.toBe(0)
    for (const attack of ['readShadow', 'listAgentData', 'readCredential', 'listVictimDir', 'readVictimFile', 'readVictimEnviron', 'listRoot', 'killVictim', 'writeAppDir', 'writeUsr', 'writeEtc', 'bindPrivilegedPort']) {
      expect({ attack, outcome: r[attack] }).toEqual({ attack, outcome: expect.stringMatching(/^denied: /) })
    }
    // Its own network namespace: nothing of the node answers it, on loopback or any of the node's addresses.
    for (const [service, outcome] of Object.entries(r.nodeServices as Record<string, string>)) expect({ service, outcome }).toEqual({ service, outcome: expect.stringMatching(/^denied: /) })
    // A port it binds is its own namespace's: the node's port stays the victim's (it still answers there, below).
    expect(r.bindVictimPort).toMatch(/^ALLOWED: bound|^denied: /)
    // Its own places are writable, and /home holds only its own work dir.
    expect(r.writeHome).toMatch(/^ALLOWED/)
    expect(r.writeTmp).toMatch(/^ALLOWED/)
    expect(r.listHome).toBe('ALLOWED: app')
    // Its PID namespace: its init, itself, and the fork bomb's survivors at most; no environment it can read has A's secret.
    expect(r.visiblePids).toBeLessThan(5)
    expect(r.secretInSomeEnviron).toBe(false)
    const bomb = r.forkBomb as { started: number; stoppedBy: string | null }
    expect(bomb.stoppedBy).toBe('EAGAIN')
    expect(bomb.started).toBeLessThan(APP_PIDS_MAX)

    // On the host, A's file belongs to A's own unprivileged uid, which is not B's.
    const owner = statSync(path.join(dataDir, 'instances', v.id, 'work', 'secret.txt')).uid
    expect(owner).toBeGreaterThanOrEqual(200_000)
    expect(owner).not.toBe(r.uid)
    const victimAfter = (await tenants.a.dev.apps.get({ tenantId: tenants.a.id, appId: victim.id })).instances[0]!
    expect(victimAfter).toMatchObject({ state: 'running', restarts: 0 })
    expect(await (await fetch(v.url!)).text()).toBe('victim')
  })

  it('enforces the memory, cpu and pids limits of the spec in the instance’s cgroup, and reports an OOM kill as such', async () => {
    // A pids limit is a whole number of at least 8.
    await expect(
      tenants.b.dev.apps.create({ tenantId: tenants.b.id, name: 'tiny', replicas: 1, spec: { command: 'node', cpuMillis: 100, memoryMb: 64, pidsMax: 2 } }),
    ).rejects.toMatchObject({ code: 'BAD_REQUEST', message: expect.stringContaining('At least 8') })
    const hog = await tenants.b.dev.apps.create({
      tenantId: tenants.b.id,
      name: 'hog',
      replicas: 1,
      // Four times its limit, as fast as it can.
      spec: { command: 'node', args: ['-e', 'const a = []; for (;;) a.push(Buffer.alloc(1 << 20).fill(1))'], cpuMillis: 250, memoryMb: 64, restartPolicy: 'never' },
    })
    const dead = await waitFor(
      'OOM kill',
      async () => (await tenants.b.dev.apps.get({ tenantId: tenants.b.id, appId: hog.id })).instances.find((i) => i.state === 'exited' || i.state === 'failed'),
      60_000,
    )
    expect(dead.message).toMatch(/out of memory.*64 MiB/)
    expect(dead.exitCode).toBe(137)
    // A cpu and memory limit as written in the app's cgroup (v1: cfs quota per period; v2: cpu.max):
    // the share counted per second while it starts, then per 100 ms.
    const app = await tenants.b.dev.apps.create({
      tenantId: tenants.b.id,
      name: 'limited',
      replicas: 1,
      spec: { command: 'node', args: ['-e', 'require("http").createServer((q, s) => s.end("ok")).listen(process.env.PORT)'], cpuMillis: 250, memoryMb: 96, pidsMax: 32 },
    })
    const i = await running('b', app.id)
    const pid = agent.reports().find((r) => r.instanceId === i.id)!.pid!
    const groups = new Map(
      readFileSync(`/proc/${pid}/cgroup`, 'utf8')
        .trim()
        .split('\n')
        .flatMap((l) => {
          const [, ctrls, p] = /^\d+:([^:]*):(.*)$/.exec(l)!
          return ctrls!.split(',').map((c) => [c, p!] as const)
        }),
    )
    const v1 = (c: string, f: string) => readFileSync(path.join('/sys/fs/cgroup', c, groups.get(c)!, f), 'utf8').trim()
    const isV1 = groups.get('memory')?.endsWith(i.id) === true
    const dir = isV1 ? path.join('/sys/fs/cgroup/memory', groups.get('memory')!) : path.join('/sys/fs/cgroup', groups.get('')!)
    const cpu = () => (isV1 ? `${v1('cpu', 'cpu.cfs_quota_us')} ${v1('cpu', 'cpu.cfs_period_us')}` : readFileSync(path.join(dir, 'cpu.max'), 'utf8').trim())
    expect(['250000 1000000', '25000 100000']).toContain(cpu())
    await waitFor('the 100 ms period after the start', async () => cpu() === '25000 100000', 30_000)
    if (isV1) {
      expect(v1('memory', 'memory.limit_in_bytes')).toBe(String(96 * 1024 * 1024))
      expect(v1('pids', 'pids.max')).toBe('32')
    } else {
      expect(readFileSync(path.join(dir, 'memory.max'), 'utf8').trim()).toBe(String(96 * 1024 * 1024))
      expect(readFileSync(path.join(dir, 'pids.max'), 'utf8').trim()).toBe('32')
    }
    // Stopping it leaves nothing behind: the whole cgroup is gone.
    await tenants.b.dev.apps.scale({ tenantId: tenants.b.id, appId: app.id, replicas: 0 })
    await waitFor('stopped', async () => !agent.reports().some((r) => r.instanceId === i.id && r.state === 'running'), 30_000)
    await waitFor('cgroup removed', async () => !existsSync(dir), 30_000)
  })

  it('keeps an OOM kill as the instance’s last exit after the restart, while it runs again', async () => {
    // Its first run allocates past its limit; the run after it (its work dir keeps the marker) serves.
    const code = `const f = process.env.HOME + '/oom-once'; if (!require('fs').existsSync(f)) { require('fs').writeFileSync(f, ''); const a = []; for (;;) a.push(Buffer.alloc(1 << 20).fill(1)) } require('http').createServer((q, s) => s.end('ok')).listen(process.env.PORT)`
    const app = await tenants.b.dev.apps.create({
      tenantId: tenants.b.id,
      name: 'oom-once',
      replicas: 1,
      spec: { command: 'node', args: ['-e', code], cpuMillis: 250, memoryMb: 64, restartPolicy: 'always' },
    })
    const get = async () => (await tenants.b.dev.apps.get({ tenantId: tenants.b.id, appId: app.id })).instances[0]
    await running('b', app.id)
    // Read after it served: the run that answered is the restarted one.
    const i = (await get())!
    expect(i).toMatchObject({ state: 'running', restarts: 1 })
    // The running instance's own message is gone; how its previous run ended is not.
    expect(i.message).toBeNull()
    expect(i.lastExit).toMatchObject({ reason: 'oomKilled', exitCode: 137, signal: 'SIGKILL', message: expect.stringMatching(/out of memory.*64 MiB/) })
    expect(i.lastExit!.at.getTime()).toBeLessThanOrEqual(i.startedAt!.getTime())
    await tenants.b.dev.apps.delete({ tenantId: tenants.b.id, appId: app.id })
  })
})
