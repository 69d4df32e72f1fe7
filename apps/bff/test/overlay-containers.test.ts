import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { createConnection, createServer, type Server } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { removeNodeContainers, TEST_IMAGE, testEngine } from '../../../packages/agents/test/engine'
import { leftovers, makeUnderlay, overlayUnavailable, runIn, tcpAsk, type SimNode, type Underlay } from '../../../packages/agents/test/netns'
import { repoRoot } from '../src/config'
import { addMember, callerFor, OPERATOR, startTestBff, waitFor, type TestBff } from './harness'

// Containers on a tenant network through the real agent: two simulated nodes (namespaces on a
// 198.18.0.0/15 underlay, the agent CLI in each, reaching the BFF through a relay), the test's
// container engine (Podman: containers join the instance namespace by path). A process app
// and a container app of one tenant reach each other by address and by name across the nodes.
const skip = overlayUnavailable()
const engine = skip ? null : await testEngine()

/** Answers "resolve NAME" with what the instance's resolver finds, anything else with its IP. */
const SERVER = `require('net').createServer((s)=>{s.on('error',()=>{});let b='';s.on('data',(d)=>{b+=d;let i;while((i=b.indexOf('\\n'))>=0){const l=b.slice(0,i);b=b.slice(i+1);if(l.startsWith('resolve '))require('dns').lookup(l.slice(8),{all:true,family:4},(e,a)=>s.write((e?e.code:a.map((x)=>x.address).sort().join(','))+'\\n'));else s.write(process.env.ALVEARY_IP+'\\n')}})}).listen(Number(process.env.PORT))`

describe.skipIf(skip || !engine)('containers on a tenant network, through the agent', () => {
  let u: Underlay
  let bff: TestBff
  let relay: Server
  let dataRoot: string
  const run = randomBytes(3).toString('hex')
  const children: ChildProcess[] = []
  // Names of their own: the engine is shared, and an agent removes containers labelled with its name.
  const nodeName = (n: SimNode) => `ovc-${run}-${u.nodes.indexOf(n) + 1}`
  let dev: Awaited<ReturnType<typeof callerFor>>
  let tenantId: string

  beforeAll(async () => {
    u = makeUnderlay(2)
    dataRoot = await mkdtemp(path.join(os.tmpdir(), 'alveary-ovc-'))
    bff = await startTestBff({ ALVEARY_HEARTBEAT_MS: '2000', ALVEARY_NODE_LEASE_MS: '10000', ALVEARY_STOPPED_RETENTION_MS: '0' })
    const sock = path.join(dataRoot, 'bff.sock')
    const port = Number(new URL(bff.url).port)
    relay = createServer((c) => {
      const b = createConnection(port, '127.0.0.1')
      c.pipe(b)
      b.pipe(c)
      c.on('error', () => b.destroy())
      b.on('error', () => c.destroy())
    })
    await new Promise<void>((r) => relay.listen(sock, r))
    const op = await callerFor(bff, OPERATOR.email, OPERATOR.password)
    const joinToken = (await op.joinTokens.create({ description: 'ovc', ttlHours: 1, uses: 2 })).token
    for (const n of u.nodes) {
      const k = u.nodes.indexOf(n) + 1
      const script = `require('net').createServer((c)=>{const u=require('net').connect(${JSON.stringify(sock)});c.pipe(u);u.pipe(c);c.on('error',()=>u.destroy());u.on('error',()=>c.destroy())}).listen(4000,'127.0.0.1')`
      children.push(spawn('nsenter', [`--net=/run/netns/${n.ns}`, '--', process.execPath, '-e', script], { stdio: 'ignore' }))
      const args = [
        path.join(repoRoot, 'packages/agents/bin/alveary-agent.mjs'),
        '--server', 'ws://127.0.0.1:4000', '--join-token', joinToken, '--name', nodeName(n), '--address', n.ip, '--labels', `slot=${k}`,
        '--network', 'overlay', '--network-prefix', n.prefix, '--data-dir', path.join(dataRoot, n.ns),
        '--port-range', `${33000 + k * 100}-${33000 + k * 100 + 99}`, '--log-level', process.env.TEST_LOG ?? 'warn', '--docker-host', engine!.host,
      ]
      children.push(spawn('nsenter', [`--net=/run/netns/${n.ns}`, '--', process.execPath, ...args], { cwd: repoRoot, stdio: ['ignore', 'inherit', 'inherit'] }))
    }
    await waitFor('2 overlay nodes with docker', async () => (await op.nodes.list()).filter((n) => n.state === 'ready' && n.drivers.includes('docker')).length === 2, 90_000)
    tenantId = (await op.tenants.create({ slug: `ovc-${run}`, name: 'Containers' })).id
    await addMember(bff, op, tenantId, { email: `ovc-${run}@sim.test`, name: 'c', password: 'ovc-password-1', role: 'owner' })
    dev = await callerFor(bff, `ovc-${run}@sim.test`, 'ovc-password-1')
    await dev.networks.create({ tenantId, name: 'shared', cidr: '100.64.201.0/24' })
  }, 240_000)

  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL')
    if (engine && u) for (const n of u.nodes) await removeNodeContainers(engine.docker, nodeName(n))
    relay?.close()
    await bff?.stop()
    await bff?.dropDatabase()
    u?.cleanup()
    if (dataRoot) await rm(dataRoot, { recursive: true, force: true })
  }, 60_000)

  it('runs a container app at its address on the other node than its peer; they reach each other by address and by name', async () => {
    const peerApp = (await dev.apps.create({ tenantId, name: 'peer', replicas: 1, network: 'shared', spec: { command: 'node', args: ['-e', SERVER], cpuMillis: 50, memoryMb: 32, ports: [{ name: 'tcp' }], nodeSelector: { slot: '1' } } })).id
    const peer = await waitFor('the process peer running', async () => {
      const i = (await dev.apps.get({ tenantId, appId: peerApp })).instances[0]
      return i?.state === 'running' && i.node && i.ip ? i : null
    }, 90_000)
    const webApp = (
      await dev.apps.create({
        tenantId,
        name: 'web',
        replicas: 1,
        network: 'shared',
        spec: {
          driver: 'docker',
          image: TEST_IMAGE,
          command: 'sh',
          args: ['-c', 'echo "$ALVEARY_IP" > /tmp/index.html && grep nameserver /etc/resolv.conf > /tmp/resolv.txt; exec httpd -f -p "$PORT" -h /tmp'],
          cpuMillis: 50,
          memoryMb: 32,
          ports: [{ name: 'http' }],
          // The other node: the container's traffic crosses the VXLAN.
          nodeSelector: { slot: '2' },
        },
      })
    ).id
    const web = await waitFor('the container running', async () => {
      const i = (await dev.apps.get({ tenantId, appId: webApp })).instances[0]
      return i?.state === 'running' && i.node && i.ip ? i : null
    }, 120_000)
    const peerNs = `/run/netns/${u.nodes.find((n) => nodeName(n) === peer.node!.name)!.prefix}-i-${peer.id}`
    const get = (url: string) =>
      runIn(peerNs, `require('http').get(${JSON.stringify(url)},{timeout:3000},(r)=>{let b='';r.on('data',(d)=>b+=d);r.on('end',()=>console.log(b.trim()))}).on('error',(e)=>console.log('error '+e.code))`)
    expect(web.node!.name).not.toBe(peer.node!.name)
    // By address, from the process on the other node.
    expect(await waitFor('the container answers at its address', async () => ((await get(`http://${web.ip}:8080/`)) === web.ip ? web.ip : null), 30_000)).toBe(web.ip)
    // By name: the process resolves the container app, the container sees the network's resolver.
    // A name follows readiness: it is pushed to the peer's node once the container's report is in.
    expect(await waitFor('the peer resolves web', async () => ((await tcpAsk(peerNs, '127.0.0.1', 8080, 'resolve web', 20_000)) === web.ip ? web.ip : null), 30_000)).toBe(web.ip)
    expect(await get(`http://${web.ip}:8080/resolv.txt`)).toBe('nameserver 100.64.201.1')
    // Its published port on its node, from the other node.
    const node = u.nodes.find((n) => nodeName(n) === web.node!.name)!
    const from = u.nodes.find((n) => n !== node)!
    expect(await runIn(from.ns, `require('http').get('http://${node.ip}:${Object.values(web.hostPorts)[0]}/',(r)=>{let b='';r.on('data',(d)=>b+=d);r.on('end',()=>console.log(b.trim()))}).on('error',(e)=>console.log('error '+e.code))`)).toBe(web.ip)
  }, 240_000)

  it('leaves no container, namespace, link or rule behind once the apps are deleted', async () => {
    for (const a of await dev.apps.list({ tenantId })) await dev.apps.delete({ tenantId, appId: a.id })
    await waitFor('all clean', async () => u.nodes.every((n) => leftovers(n).length === 0), 60_000).catch(() => {
      throw new Error(`left behind: ${u.nodes.flatMap((n) => leftovers(n)).join(', ')}`)
    })
    for (const n of u.nodes) expect(await engine!.docker.listContainers({ all: true, filters: { label: [`alveary.node=${nodeName(n)}`] } })).toEqual([])
  }, 90_000)
})
