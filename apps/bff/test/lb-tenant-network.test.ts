import { execFileSync, spawn } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { leftovers, overlayUnavailable, runIn, tcpProbe } from '../../../packages/agents/test/netns'
import { addMember, callerFor, OPERATOR, startTestBff, waitFor, type TestBff } from './harness'
import { createSimCluster, type SimCluster } from './sim-cluster'

// Load balancers reaching instances by their tenant-network IPs: two simulated nodes (network
// namespaces, real agent CLIs, overlay networking, HAProxy). Node sim-1 only balances (cordoned,
// marked for load balancing), sim-2 runs the instances: the LB node joins the tenant's network
// without hosting any of its instances and reaches them over the VXLAN. A second tenant uses the
// SAME CIDR on the same nodes: nothing of it is reachable from the first tenant's load balancer.
const skip = overlayUnavailable()
const haveHaproxy = (() => {
  try {
    return /Built with network namespace support/.test(execFileSync('haproxy', ['-vv'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString())
  } catch {
    return false
  }
})()
if (!skip && !haveHaproxy) {
  if (process.env.CI === 'true') throw new Error('haproxy with network namespace support is required in CI')
  console.warn('skipping the tenant-network load-balancer tests: no haproxy with network namespace support')
}

const CIDR = '100.64.223.0/24'
const readiness = { type: 'http' as const, path: '/healthz', intervalSeconds: 1, timeoutSeconds: 1, failureThreshold: 3 }
const hello = { command: 'node', args: ['examples/hello/server.js'], cpuMillis: 50, memoryMb: 32, ports: [{ name: 'http', readiness }] }
const who = (body: string) => /hello from (\S+)/.exec(body)?.[1] ?? body

/** GETs from inside a namespace; "error <code>" when nothing answers. */
const httpGet = (ns: string, url: string) =>
  runIn(ns, `require('http').get(${JSON.stringify(url)},{timeout:3000},(r)=>{let b='';r.on('data',(d)=>b+=d);r.on('end',()=>console.log(b.trim()))}).on('timeout',function(){this.destroy(new Error('timeout'))}).on('error',(e)=>console.log('error '+(e.code||e.message)))`)

/**
 * Keep-alive clients inside a namespace hammering a URL until stopped (stdin closes); each
 * failed request (an error or a status other than 200) is counted. Prints {ok, failures}.
 */
function loadIn(ns: string, url: string, clients = 8) {
  const script = `const http=require('http');let run=true,ok=0;const failures=[];process.stdin.on('data',()=>{});process.stdin.on('end',()=>run=false);
const one=(agent)=>new Promise((res)=>{const q=http.get(${JSON.stringify(url)},{agent,timeout:5000},(r)=>{r.resume();r.on('end',()=>{r.statusCode===200?ok++:failures.push('status '+r.statusCode);res()})});q.on('timeout',()=>q.destroy(new Error('timeout')));q.on('error',(e)=>{failures.push(e.code||e.message);res()})});
Promise.all(Array.from({length:${clients}},async()=>{const agent=new http.Agent({keepAlive:true,maxSockets:1});while(run)await one(agent);agent.destroy()})).then(()=>{console.log(JSON.stringify({ok,failures:failures.slice(0,20),failed:failures.length}));process.exit(0)});
setInterval(()=>process.stderr.write('ok '+ok+'\\n'),200)`
  const child = spawn('nsenter', [`--net=/run/netns/${ns}`, '--', process.execPath, '-e', script], { stdio: ['pipe', 'pipe', 'pipe'] })
  let out = ''
  let ok = 0
  child.stdout.on('data', (d) => (out += d))
  child.stderr.on('data', (d) => {
    const m = /ok (\d+)\n[^]*$/.exec(String(d))
    if (m) ok = Number(m[1])
  })
  return {
    /** Resolves once `n` more requests succeeded (traffic flowed through whatever just changed). */
    flowed: (n = 50) => {
      const from = ok
      return waitFor(`${n} requests through the load balancer`, async () => ok >= from + n, 60_000)
    },
    stop: () =>
      new Promise<{ ok: number; failed: number; failures: string[] }>((resolve) => {
        child.once('exit', () => resolve(JSON.parse(out.trim() || '{"ok":0,"failed":-1,"failures":["no output"]}')))
        child.stdin.end()
      }),
  }
}

describe.skipIf(skip || !haveHaproxy)('load balancers on tenant networks', () => {
  let bff: TestBff
  let sim: SimCluster
  let joinToken = ''
  type Caller = Awaited<ReturnType<typeof callerFor>>
  let op: Caller
  const t: Record<'a' | 'b', { id: string; dev: Caller; appId: string; vxlanId: number }> = {} as never
  let lbId = ''
  let url = ''

  const lbNode = () => sim.nodes[0]!
  const appNode = () => sim.nodes[1]!
  const lbNs = () => `${lbNode().prefix}-l${t.a.vxlanId}`
  const ready = async (k: 'a' | 'b', n: number) => {
    const d = await t[k].dev.apps.get({ tenantId: t[k].id, appId: t[k].appId })
    const r = d.instances.filter((i) => i.desiredState === 'running' && i.ready && i.ip)
    return r.length === n && d.instances.length === n && r
  }

  beforeAll(async () => {
    bff = await startTestBff({ ALVEARY_HEARTBEAT_MS: '2000', ALVEARY_NODE_LEASE_MS: '10000' })
    sim = await createSimCluster({ count: 2, bffPort: () => Number(new URL(bff.url).port), joinToken: () => joinToken })
    op = await callerFor(bff, OPERATOR.email, OPERATOR.password)
    joinToken = (await op.joinTokens.create({ description: 'lb networks', ttlHours: 1, uses: 2 })).token
    for (const n of sim.nodes) sim.start(n)
    const nodes = await waitFor('2 overlay nodes ready', async () => {
      const l = await op.nodes.list()
      return l.filter((n) => n.state === 'ready').length === 2 && l
    }, 60_000)
    const lb = nodes.find((n) => n.name === sim.name(lbNode()))!
    await op.nodes.cordon({ nodeId: lb.id })
    await op.loadBalancers.setNode({ nodeId: lb.id, enabled: true })
    for (const k of ['a', 'b'] as const) {
      const id = (await op.tenants.create({ slug: `lbnet-${k}`, name: `LB net ${k}` })).id
      await addMember(bff, op, id, { email: `dev@lbnet-${k}.test`, name: 'Dev', password: 'dev-password', role: 'owner' })
      const dev = await callerFor(bff, `dev@lbnet-${k}.test`, 'dev-password')
      const net = await dev.networks.create({ tenantId: id, name: 'apps', cidr: CIDR })
      // Tenant b has more instances: addresses tenant a does not have on its own network.
      const appId = (await dev.apps.create({ tenantId: id, name: 'web', replicas: k === 'a' ? 2 : 4, network: 'apps', spec: hello })).id
      t[k] = { id, dev, appId, vxlanId: net.vxlanId }
    }
    await waitFor('a: 2 ready', () => ready('a', 2), 90_000)
    await waitFor('b: 4 ready', () => ready('b', 4), 90_000)
  }, 240_000)

  afterAll(async () => {
    await sim?.cleanup()
    await bff?.stop()
    await bff?.dropDatabase()
  }, 60_000)

  it('balances over the instances’ tenant-network IPs from a node that runs none of them', async () => {
    const created = await t.a.dev.loadBalancers.create({ tenantId: t.a.id, name: 'front', drainSeconds: 1, listeners: [{ protocol: 'http', rules: [{ targets: [{ appId: t.a.appId, port: 'http' }] }] }] })
    lbId = created.id
    const active = await waitFor('active', async () => {
      const l = await t.a.dev.loadBalancers.get({ tenantId: t.a.id, lbId })
      return l.state === 'active' && l
    }, 60_000)
    url = `http://${lbNode().ip}:${active.listeners[0]!.port}/`
    const instances = (await ready('a', 2)) || []
    // HAProxy's servers are the instances' IPs and inner port, opened in the network's namespace.
    const cfg = path.join(sim.dataDir(lbNode()), 'haproxy', 'haproxy.cfg')
    await waitFor('servers by instance IP', async () => {
      const text = await readFile(cfg, 'utf8').catch(() => '')
      return instances.every((i) => text.includes(`${i.ip}:8080 `)) && text.includes(`namespace ${lbNs()}`)
    }, 60_000)
    // A client on the other node reaches both instances through the load balancer.
    const seen = await waitFor('traffic on both instances', async () => {
      const s = new Set<string>()
      for (let k = 0; k < 10; k++) s.add(who(await httpGet(appNode().ns, url)))
      return s.size === 2 && s
    }, 60_000)
    expect([...seen].sort()).toEqual(instances.map((i) => i.id).sort())
    // The network lists the node's address with the instances' leases.
    const detail = await t.a.dev.networks.get({ tenantId: t.a.id, networkId: (await t.a.dev.networks.list({ tenantId: t.a.id })).find((n) => n.name === 'apps')!.id })
    expect(detail.lbAddresses).toEqual([expect.objectContaining({ node: expect.objectContaining({ name: sim.name(lbNode()) }) })])
    expect(detail.used).toBe(detail.leases.length + 1)
    // The LB node has no route into any tenant network: only its namespace for this one does.
    expect(execFileSync('ip', ['-n', lbNode().ns, '-j', 'route', 'show']).toString()).not.toContain('100.64.223.')
    expect(execFileSync('ip', ['-n', lbNs(), '-j', 'route', 'show']).toString()).not.toContain('"dst":"default"')
  }, 120_000)

  it('reaches nothing of the other tenant on the same CIDR', async () => {
    const a = (await ready('a', 2)) || []
    const b = (await ready('b', 4)) || []
    const aIps = new Set(a.map((i) => i.ip))
    const lbAddress = await waitFor('the LB namespace address', async () => {
      const links = JSON.parse(execFileSync('ip', ['-n', lbNs(), '-j', 'addr', 'show', 'dev', 'eth0']).toString()) as Array<{ addr_info: Array<{ family: string; local: string }> }>
      return links[0]?.addr_info.find((x) => x.family === 'inet')?.local
    })
    // Same address on both networks: the namespace reaches tenant a's instance.
    for (const i of a) expect(who(await httpGet(lbNs(), `http://${i.ip}:8080/`))).toBe(i.id)
    // Addresses only tenant b has: unreachable from tenant a's load-balancer namespace.
    const onlyB = b.filter((i) => !aIps.has(i.ip) && i.ip !== lbAddress)
    expect(onlyB.length).toBeGreaterThan(0)
    for (const i of onlyB) expect(await tcpProbe(lbNs(), i.ip!, 8080)).toMatch(/^error/)
    // And no response through the load balancer ever came from tenant b.
    const bIds = new Set(b.map((i) => i.id))
    for (let k = 0; k < 10; k++) expect(bIds.has(who(await httpGet(appNode().ns, url)))).toBe(false)
  }, 120_000)

  it('loses no request while instances join, drain and leave (runtime API, no reload)', async () => {
    const cfg = path.join(sim.dataDir(lbNode()), 'haproxy', 'haproxy.cfg')
    const before = await readFile(cfg, 'utf8')
    const gen = loadIn(appNode().ns, url)
    try {
      await gen.flowed()
      await t.a.dev.apps.scale({ tenantId: t.a.id, appId: t.a.appId, replicas: 3 })
      await waitFor('a: 3 ready', () => ready('a', 3), 90_000)
      await gen.flowed()
      await t.a.dev.apps.scale({ tenantId: t.a.id, appId: t.a.appId, replicas: 1 })
      await waitFor('a: 1 left', () => ready('a', 1), 90_000)
      await gen.flowed()
    } finally {
      const r = await gen.stop()
      expect(r.failures).toEqual([])
      expect(r.failed).toBe(0)
      expect(r.ok).toBeGreaterThan(100)
    }
    // Membership moved through the runtime API: the configuration HAProxy loaded is the same.
    expect(await readFile(cfg, 'utf8')).toBe(before)
  }, 240_000)

  it('leaves the network when nothing needs it: no namespace, link or address behind', async () => {
    await t.a.dev.loadBalancers.delete({ tenantId: t.a.id, lbId })
    await waitFor('the LB node left the network', async () => leftovers(lbNode()).length === 0, 60_000).catch(() => {
      throw new Error(`left behind on the LB node: ${leftovers(lbNode()).join(', ')}`)
    })
    const net = (await t.a.dev.networks.list({ tenantId: t.a.id })).find((n) => n.name === 'apps')!
    expect(net.used).toBe(1)
  }, 90_000)
})
