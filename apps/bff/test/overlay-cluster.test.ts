import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { createConnection, createServer, type Server } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { leftovers, makeUnderlay, overlayUnavailable, tcpAsk, tcpProbe, type SimNode, type Underlay } from '../../../packages/agents/test/netns'
import { repoRoot } from '../src/config'
import { addMember, callerFor, OPERATOR, startTestBff, waitFor, type TestBff, readyNodes } from './harness'

// Tenant networks end to end: a BFF, and three simulated nodes (network namespaces on a
// 198.18.0.0/15 underlay), each running the real agent CLI inside its namespace. Agents reach
// the BFF through a relay over a Unix socket, so no traffic leaves the namespaces the test made
// (and the host's loopback). Two tenants use the SAME CIDR.
const skip = overlayUnavailable()

/**
 * Answers every line with "<tenant> <its IP>", and "resolve NAME" with the addresses the
 * instance's own resolver finds (or the error code); keeps connections open (agent-restart check).
 */
const SERVER = `require('net').createServer((s)=>{s.on('error',()=>{});let b='';s.on('data',(d)=>{b+=d;let i;while((i=b.indexOf('\\n'))>=0){const l=b.slice(0,i);b=b.slice(i+1);if(l.startsWith('resolve '))require('dns').lookup(l.slice(8),{all:true,family:4},(e,a)=>s.write((e?e.code:a.map((x)=>x.address).sort().join(','))+'\\n'));else s.write(process.env.TENANT+' '+process.env.ALVEARY_IP+'\\n')}})}).listen(Number(process.env.PORT))`
/**
 * Two ports: on `ctl` (no check) "down" closes the `ready` port, which its readiness check
 * connects to, and "up" opens it again.
 */
const FLAKY = `const net=require('net');let r=null;const up=()=>{r=r||net.createServer((s)=>{s.on('error',()=>{});s.end()}).listen(Number(process.env.PORT_READY))};up();net.createServer((s)=>{s.on('error',()=>{});let b='';s.on('data',(d)=>{b+=d;let i;while((i=b.indexOf('\\n'))>=0){const l=b.slice(0,i);b=b.slice(i+1);if(l==='down'&&r){r.close();r=null}else if(l==='up')up();s.write(l+'\\n')}})}).listen(Number(process.env.PORT_CTL))`
// "running" is the process started; the readiness check says it listens (on a busy machine node needs a while).
const readiness = { type: 'tcp' as const, intervalSeconds: 1, timeoutSeconds: 1, failureThreshold: 1 }
const spec = (tenant: string) => ({ command: 'node', args: ['-e', SERVER], env: { TENANT: tenant }, cpuMillis: 50, memoryMb: 32, spread: 'hard' as const, ports: [{ name: 'tcp', readiness }] })

/** SIGKILL, where the process may be gone already (a sandboxed instance is several processes that die together). */
function killGone(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err
  }
}

describe.skipIf(skip)('tenant networks across simulated nodes', () => {
  let u: Underlay
  let bff: TestBff
  let relay: Server
  let relaySock: string
  let dataRoot: string
  let joinToken: string
  const agents = new Map<string, ChildProcess>()
  const relays = new Map<string, ChildProcess>()
  const extra: ChildProcess[] = []
  type Caller = Awaited<ReturnType<typeof callerFor>>
  let op: Caller
  const tenants: Record<'a' | 'b', { id: string; dev: Caller; appId: string }> = {} as never
  const nodeName = (n: SimNode) => `sim-${u.nodes.indexOf(n) + 1}`
  const byName = (name: string) => u.nodes.find((n) => nodeName(n) === name)!

  function startAgent(n: SimNode) {
    const k = u.nodes.indexOf(n) + 1
    if (!relays.has(n.ns)) {
      const script = `require('net').createServer((c)=>{const u=require('net').connect(${JSON.stringify(relaySock)});c.pipe(u);u.pipe(c);c.on('error',()=>u.destroy());u.on('error',()=>c.destroy())}).listen(4000,'127.0.0.1')`
      relays.set(n.ns, spawn('nsenter', [`--net=/run/netns/${n.ns}`, '--', process.execPath, '-e', script], { stdio: 'ignore' }))
    }
    const args = [
      path.join(repoRoot, 'packages/agents/bin/alveary-agent.mjs'),
      '--server', 'ws://127.0.0.1:4000', '--join-token', joinToken, '--name', `sim-${k}`, '--address', n.ip,
      '--network', 'overlay', '--network-prefix', n.prefix, '--data-dir', path.join(dataRoot, n.ns),
      '--port-range', `${31000 + k * 100}-${31000 + k * 100 + 99}`, '--log-level', process.env.TEST_LOG ?? 'warn', '--docker-host', 'none',
    ]
    const child = spawn('nsenter', [`--net=/run/netns/${n.ns}`, '--', process.execPath, ...args], { cwd: repoRoot, stdio: ['ignore', 'inherit', 'inherit'] })
    agents.set(n.ns, child)
  }
  function killAgent(n: SimNode) {
    agents.get(n.ns)?.kill('SIGKILL')
    agents.delete(n.ns)
  }
  const instanceNs = (node: SimNode, id: string) => `/run/netns/${node.prefix}-i-${id}`
  const app = (t: 'a' | 'b') => tenants[t].dev.apps.get({ tenantId: tenants[t].id, appId: tenants[t].appId })
  const running = async (t: 'a' | 'b', n: number) => {
    const d = await app(t)
    const r = d.instances.filter((i) => i.desiredState === 'running' && i.state === 'running' && i.ready === true && i.ip && i.node)
    return r.length === n && r
  }

  /** All three of a tenant's echo instances, once they run (they may be mid-restart when asked). */
  const settled = (t: 'a' | 'b') =>
    waitFor(`tenant ${t}: 3 running`, () => running(t, 3), 60_000).catch(async (err) => {
      throw new Error(`${(err as Error).message}; instances: ${JSON.stringify((await app(t)).instances.map((i) => [i.node?.name, i.desiredState, i.state, i.restarts, i.message, i.pendingReason]))}`)
    })

  beforeAll(async () => {
    u = makeUnderlay(3)
    dataRoot = await mkdtemp(path.join(os.tmpdir(), 'alveary-overlay-'))
    // Heartbeats every 2 s (the gateway drops a peer silent for 3 of them) and a 10 s lease: on a
    // busy 2-core machine the agents and their relays stall for 2-3 s at times. With 0.5 s
    // heartbeats and a 2.5 s lease those stalls made nodes NotReady and their instances were
    // rescheduled over and over (hard spread: back onto the same node), so instances were
    // restarting whenever a step looked (beforeAll's "3 running", ECONNREFUSED on published ports).
    bff = await startTestBff({ ALVEARY_HEARTBEAT_MS: '2000', ALVEARY_NODE_LEASE_MS: '10000', ALVEARY_EVICTION_GRACE_MS: '1000', ALVEARY_STOPPED_RETENTION_MS: '0' })
    relaySock = path.join(dataRoot, 'bff.sock')
    const port = Number(new URL(bff.url).port)
    relay = createServer((c) => {
      const b = createConnection(port, '127.0.0.1')
      c.pipe(b)
      b.pipe(c)
      c.on('error', () => b.destroy())
      b.on('error', () => c.destroy())
    })
    await new Promise<void>((r) => relay.listen(relaySock, r))
    op = await callerFor(bff, OPERATOR.email, OPERATOR.password)
    joinToken = (await op.joinTokens.create({ description: 'sim', ttlHours: 1, uses: 10 })).token
    for (const n of u.nodes) startAgent(n)
    await readyNodes(op, 3)
    for (const t of ['a', 'b'] as const) {
      const id = (await op.tenants.create({ slug: `tenant-${t}`, name: `Tenant ${t}` })).id
      await addMember(bff, op, id, { email: `${t}@sim.test`, name: t, password: `${t}-password-1`, role: 'owner' })
      const dev = await callerFor(bff, `${t}@sim.test`, `${t}-password-1`)
      await dev.networks.create({ tenantId: id, name: 'shared', cidr: '100.64.200.0/24' })
      const appId = (await dev.apps.create({ tenantId: id, name: 'echo', replicas: 3, spec: spec(t.toUpperCase()), network: 'shared' })).id
      tenants[t] = { id, dev, appId }
    }
    for (const t of ['a', 'b'] as const) await waitFor(`tenant ${t}: 3 running`, () => running(t, 3), 90_000)
  }, 240_000)

  afterAll(async () => {
    for (const c of [...agents.values(), ...relays.values(), ...extra]) c.kill('SIGKILL')
    // HAProxy outlives its agent by design (the load-balancer test started it in sim-1's namespace).
    const pidsIn = (ns: string) => {
      try {
        return execFileSync('ip', ['netns', 'pids', ns]).toString().split('\n').filter(Boolean)
      } catch {
        return []
      }
    }
    for (const n of u?.nodes ?? [])
      for (const p of pidsIn(n.ns)) {
        try {
          process.kill(Number(p), 'SIGKILL')
        } catch {
          /* gone */
        }
      }
    // Whatever still runs in our namespaces (instances of killed agents).
    for (const n of u?.nodes ?? [])
      for (const l of execFileSync('ip', ['netns', 'list']).toString().split('\n'))
        if (l.startsWith(`${n.prefix}-`)) {
          const pids = execFileSync('ip', ['netns', 'pids', l.split(' ')[0]!]).toString().split('\n').filter(Boolean)
          for (const p of pids) {
            try {
              process.kill(Number(p), 'SIGKILL')
            } catch {
              /* gone */
            }
          }
        }
    relay?.close()
    await bff?.stop()
    await bff?.dropDatabase()
    u?.cleanup()
    if (dataRoot) await rm(dataRoot, { recursive: true, force: true })
  }, 60_000)

  it('connects every pair of a tenant’s instances across nodes, at the same addresses in both tenants', async () => {
    for (const t of ['a', 'b'] as const) {
      const inst = await settled(t)
      expect(new Set(inst.map((i) => i.node!.name)).size).toBe(3)
      expect(inst.map((i) => i.ip).sort()).toEqual(['100.64.200.2', '100.64.200.3', '100.64.200.4'])
      for (const from of inst)
        for (const to of inst) {
          if (from === to) continue
          expect(await tcpProbe(instanceNs(byName(from.node!.name), from.id), to.ip!, 8080)).toBe(`${t.toUpperCase()} ${to.ip}`)
        }
    }
  })

  it('lets no packet cross from one tenant to the other', async () => {
    const a = (await settled('a'))[0]!
    const node = byName(a.node!.name)
    // Tenant b's router on the same node, by its transit address: refused at the node.
    const vxlanB = (await tenants.b.dev.networks.list({ tenantId: tenants.b.id })).find((n) => n.name === 'shared')!.vxlanId
    const transitB = `169.254.${vxlanB >> 8}.${vxlanB & 255}`
    expect(await tcpProbe(instanceNs(node, a.id), transitB, 8080, 800)).toMatch(/^error/)
    const nft = (ns: string, args: string[]) => JSON.parse(execFileSync('ip', ['netns', 'exec', ns, 'nft', '-j', ...args]).toString()) as { nftables: Array<{ counter?: { name: string; packets: number } }> }
    const count = (j: ReturnType<typeof nft>, name: string) => j.nftables.find((c) => c.counter?.name === name)?.counter?.packets ?? -1
    expect(count(nft(node.ns, ['list', 'counters']), 'cross_network')).toBeGreaterThan(0)
    // Nothing entered any of tenant b's routers from outside except published ports.
    for (const n of u.nodes) expect(count(nft(`${n.prefix}-n${vxlanB}`, ['list', 'counters']), 'from_node')).toBe(0)
  })

  it('publishes ports on the node address (from another node) and on 127.0.0.1 of the node; instances cannot reach the node’s services', async () => {
    for (const t of ['a', 'b'] as const) {
      for (const i of await settled(t)) {
        const node = byName(i.node!.name)
        const hostPort = Object.values(i.hostPorts)[0]!
        const other = u.nodes.find((n) => n !== node)!
        expect(await tcpProbe(other.ns, node.ip, hostPort)).toBe(`${t.toUpperCase()} ${i.ip}`)
        expect(await tcpProbe(node.ns, '127.0.0.1', hostPort)).toBe(`${t.toUpperCase()} ${i.ip}`)
        // The agent's link to the BFF (port 4000 on the node) is not reachable from the instance.
        expect(await tcpProbe(instanceNs(node, i.id), node.ip, 4000, 800)).toMatch(/^error/)
        expect(await tcpProbe(instanceNs(node, i.id), '169.254.0.1', 4000, 800)).toMatch(/^error/)
      }
    }
  })

  it('serves a load balancer on one node in front of a network app on every node (it joins the network and reaches them by IP)', async () => {
    const lbNode = byName('sim-1')
    const nodeId = (await op.nodes.list()).find((n) => n.name === 'sim-1')!.id
    await op.loadBalancers.setNode({ nodeId, enabled: true })
    const { id: tenantId, dev, appId } = tenants.a
    const lb = await dev.loadBalancers.create({ tenantId, name: 'front', drainSeconds: 0, listeners: [{ protocol: 'tcp', rules: [{ targets: [{ appId, port: 'tcp' }] }] }] })
    try {
      const active = await waitFor('the load balancer active', async () => {
        const l = await dev.loadBalancers.get({ tenantId, lbId: lb.id })
        return l.state === 'active' && l
      }, 60_000)
      const port = active.listeners[0]!.port
      const expected = new Set((await settled('a')).map((i) => `A ${i.ip}`))
      // From another node: each new connection goes to the next instance, wherever it runs.
      const seen = new Set<string>()
      await waitFor('every instance answers through the load balancer', async () => {
        for (let k = 0; k < 6; k++) seen.add(await tcpProbe(byName('sim-2').ns, lbNode.ip, port))
        return [...expected].every((e) => seen.has(e))
      }, 60_000)
      expect([...seen].filter((s) => !expected.has(s))).toEqual([])
    } finally {
      await dev.loadBalancers.delete({ tenantId, lbId: lb.id })
      await op.loadBalancers.setNode({ nodeId, enabled: false })
    }
  }, 150_000)

  it('lets instances resolve <app> and <ordinal>.<app> of their own network only', async () => {
    const secret = (await tenants.b.dev.apps.create({ tenantId: tenants.b.id, name: 'secret', replicas: 1, spec: { ...spec('S'), spread: 'none' }, network: 'shared' })).id
    const s = await waitFor('secret running', async () => {
      const i = (await tenants.b.dev.apps.get({ tenantId: tenants.b.id, appId: secret })).instances[0]
      return i?.state === 'running' && i.node && i.ip ? i : null
    }, 60_000)
    for (const t of ['a', 'b'] as const) {
      const inst = await settled(t)
      const all = inst.map((i) => i.ip!).sort().join(',')
      for (const i of inst) {
        const ns = instanceNs(byName(i.node!.name), i.id)
        // Names that are not the network's go to the node's resolvers, which a simulated node cannot reach: an error, maybe after a timeout.
        const ask = (name: string) => tcpAsk(ns, '127.0.0.1', 8080, `resolve ${name}`, 20_000)
        // <app> follows readiness: pushed to every node of the network once the instances' reports are in.
        expect(await waitFor('echo resolves to every instance', async () => ((await ask('echo')) === all ? all : null), 30_000)).toBe(all)
        for (const peer of inst) expect(await ask(`${peer.ordinal}.echo`)).toBe(peer.ip)
        // Tenant b's app is no name on tenant a's network (same CIDR, same router addresses).
        if (i === inst[0]) expect(await ask('secret')).toEqual(t === 'b' ? s.ip : expect.stringMatching(/^E[A-Z_]+$/))
      }
    }
  }, 120_000)

  it('answers <app> with its ready instances only; <ordinal>.<app> keeps answering one failing its readiness check', async () => {
    const { id: tenantId, dev } = tenants.a
    const flakySpec = { command: 'node', args: ['-e', FLAKY], cpuMillis: 50, memoryMb: 32, spread: 'none' as const, ports: [{ name: 'ctl' }, { name: 'ready', readiness }] }
    const appId = (await dev.apps.create({ tenantId, name: 'flaky', replicas: 2, spec: flakySpec, network: 'shared' })).id
    try {
      const [x, y] = await waitFor('flaky: 2 ready', async () => {
        const r = (await dev.apps.get({ tenantId, appId })).instances.filter((i) => i.state === 'running' && i.ready === true && i.ip)
        return r.length === 2 && r.sort((p, q) => p.ordinal - q.ordinal)
      }, 60_000)
      const [from] = await settled('a')
      const ns = instanceNs(byName(from!.node!.name), from!.id)
      const ask = (name: string) => tcpAsk(ns, '127.0.0.1', 8080, `resolve ${name}`, 20_000)
      const both = [x!.ip, y!.ip].sort().join(',')
      await waitFor('both answer flaky', async () => (await ask('flaky')) === both, 30_000)
      // x fails its readiness check: it leaves the app's name, keeps its own.
      expect(await tcpAsk(ns, x!.ip!, 8080, 'down')).toBe('down')
      await waitFor('only y answers flaky', async () => (await ask('flaky')) === y!.ip, 30_000)
      expect((await dev.apps.get({ tenantId, appId })).instances.find((i) => i.id === x!.id)).toMatchObject({ state: 'running', ready: false })
      expect(await ask(`${x!.ordinal}.flaky`)).toBe(x!.ip)
      expect(await tcpAsk(ns, x!.ip!, 8080, 'up')).toBe('up')
      await waitFor('x answers flaky again', async () => (await ask('flaky')) === both, 30_000)
    } finally {
      await dev.apps.delete({ tenantId, appId })
    }
  }, 150_000)

  it('keeps the address when the process is killed and restarted', async () => {
    const [victim] = await settled('a')
    const ns = instanceNs(byName(victim!.node!.name), victim!.id)
    const pids = execFileSync('ip', ['netns', 'pids', path.basename(ns)]).toString().split('\n').filter(Boolean)
    for (const p of pids) killGone(Number(p))
    const after = await waitFor('restarted', async () => {
      const i = (await app('a')).instances.find((x) => x.id === victim!.id)!
      return i.restarts >= 1 && i.state === 'running' && i
    }, 30_000)
    expect(after.ip).toBe(victim!.ip)
    const peer = (await settled('a')).find((i) => i.id !== victim!.id)!
    await waitFor('peer reaches it', async () => (await tcpProbe(instanceNs(byName(peer.node!.name), peer.id), victim!.ip!, 8080)) === `A ${victim!.ip}`, 15_000)
  })

  it('keeps existing connections and addresses across an agent restart', async () => {
    const before3 = await settled('a')
    const [x, y] = before3
    // A client in x's namespace talking to y every 100 ms over one connection.
    const client = spawn('nsenter', [`--net=${instanceNs(byName(x!.node!.name), x!.id)}`, '--', process.execPath, '-e',
      `const s=require('net').connect(8080,${JSON.stringify(y!.ip)});let n=0;s.on('data',()=>{n++;console.log(n)});s.on('error',(e)=>{console.log('error '+e.code);process.exit(1)});s.on('close',()=>{console.log('closed');process.exit(1)});setInterval(()=>s.write('ping\\n'),100)`], { stdio: ['ignore', 'pipe', 'inherit'] })
    extra.push(client)
    let last = ''
    client.stdout!.on('data', (d: Buffer) => (last = d.toString().trim().split('\n').pop()!))
    await waitFor('client talking', async () => Number(last) > 3)
    for (const n of u.nodes) killAgent(n)
    for (const n of u.nodes) startAgent(n)
    await waitFor('agents back', async () => (await op.nodes.list()).filter((n) => n.state === 'ready' && n.connected).length === 3, 60_000)
    const before = Number(last)
    await waitFor('the same connection still answers', async () => Number(last) > before + 10, 20_000)
    expect(client.exitCode).toBeNull()
    expect((await settled('a')).map((i) => [i.id, i.ip]).sort()).toEqual(before3.map((i) => [i.id, i.ip]).sort())
    client.kill('SIGKILL')
  }, 120_000)

  it('moves the instance of a lost node to another at the same address, reachable within seconds', async () => {
    const mover = (await tenants.a.dev.apps.create({ tenantId: tenants.a.id, name: 'mover', replicas: 1, spec: { ...spec('M'), spread: 'none' }, network: 'shared' })).id
    const get = async () => (await tenants.a.dev.apps.get({ tenantId: tenants.a.id, appId: mover })).instances[0]
    const before = await waitFor('mover running', async () => {
      const i = await get()
      return i?.state === 'running' && i.node && i
    }, 60_000)
    const lost = byName(before.node!.name)
    // The node dies: agent, relay and instances gone, its underlay link cut.
    killAgent(lost)
    relays.get(lost.ns)?.kill('SIGKILL')
    for (const l of execFileSync('ip', ['netns', 'list']).toString().split('\n'))
      if (l.startsWith(`${lost.prefix}-i-`)) for (const p of execFileSync('ip', ['netns', 'pids', l.split(' ')[0]!]).toString().split('\n').filter(Boolean)) killGone(Number(p))
    execFileSync('ip', ['-n', lost.ns, 'link', 'set', 'eth0', 'down'])
    const moved = await waitFor('moved and running', async () => {
      const i = await get()
      return i && i.state === 'running' && i.node && i.node.name !== nodeName(lost) && i
    }, 60_000, 50)
    expect(moved.id).toBe(before.id)
    expect(moved.ip).toBe(before.ip)
    // An echo instance of the tenant on the third node (the lost node's echo cannot move: hard spread).
    const peer = (await app('a')).instances.find((i) => i.state === 'running' && i.node && i.node.name !== moved.node!.name && i.node.name !== nodeName(lost))!
    // Within seconds of running at its new place (the bound is the wait's own: a loaded machine stretches it).
    await waitFor('a peer reaches the old address', async () => (await tcpProbe(instanceNs(byName(peer.node!.name), peer.id), before.ip!, 8080, 500)) === `M ${before.ip}`, 10_000, 20)
  }, 120_000)

  it('leaves no namespaces, links or rules behind once everything is deleted', async () => {
    for (const t of ['a', 'b'] as const) for (const a of await tenants[t].dev.apps.list({ tenantId: tenants[t].id })) await tenants[t].dev.apps.delete({ tenantId: tenants[t].id, appId: a.id })
    const alive = u.nodes.filter((n) => agents.has(n.ns))
    await waitFor('all clean', async () => alive.every((n) => leftovers(n).length === 0), 60_000).catch(() => {
      throw new Error(`left behind: ${alive.flatMap((n) => leftovers(n)).join(', ')}`)
    })
  }, 90_000)
})
