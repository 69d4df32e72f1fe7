import type { ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { TDesired, TDesiredInstance, TDesiredNetwork } from '@alveary/core/protocol'
import { probeUsernsAuto } from '../src/runtime/docker/capability'
import { createDockerDriver } from '../src/runtime/docker/driver'
import type { InstanceHandle } from '../src/runtime/types'
import { createTools } from '../src/network/exec'
import { overlayNames } from '../src/network/names'
import { createOverlay, type Overlay } from '../src/network/overlay'
import { removeNodeContainers, testEngine, TEST_IMAGE } from './engine'
import { makeInstance, testLogger, waitFor } from './helpers'
import { leftovers, makeUnderlay, overlayUnavailable, runIn, serveIn, tcpProbe, type Underlay } from './netns'

// Containers on a tenant network, through the Docker Engine API of the test engine (Podman):
// joined by path (Podman's `ns:` mode) and adopted by pid (what Docker needs: it has no `ns:`
// mode; Podman does `NetworkMode: none` the same way, so both paths run here). Two simulated
// nodes; a process instance on node 0 and the containers on node 1 talk over the VXLAN. Where
// Podman gives containers user namespaces (CI), a third container runs in one: adopted by pid.
const skip = overlayUnavailable()
const engine = skip ? null : await testEngine()
const usernsHere = engine?.engine === 'podman' && (await probeUsernsAuto(engine.docker)).ok

const net: Omit<TDesiredNetwork, 'peers' | 'endpoints'> = { networkId: randomUUID(), vxlanId: 4200, cidr: '100.64.0.0/24', gateway: '100.64.0.1', gatewayMac: '02:a0:00:10:68:01' }
const mac = (ip: string) => `02:a1:${ip.split('.').map((o) => Number(o).toString(16).padStart(2, '0')).join(':')}`

function instance(ip: string, hostPort: number, driver: 'process' | 'docker'): TDesiredInstance {
  return makeInstance({
    appName: `app-${driver}`,
    spec: {
      driver,
      image: driver === 'docker' ? TEST_IMAGE : null,
      command: 'sh',
      args: ['-c', 'echo "$ALVEARY_IP" > /tmp/index.html && grep nameserver /etc/resolv.conf > /tmp/resolv.txt; exec httpd -f -p "$PORT" -h /tmp'],
      ports: [{ name: 'http', containerPort: null, hostPort }],
      stopGraceSeconds: 1,
    },
    interfaces: [{ networkId: net.networkId, ip, mac: mac(ip), prefixLength: 24, gateway: '100.64.0.1' }],
  })
}

/** An HTTP GET from inside a namespace: the body's first line, or "error …". */
const httpIn = (ns: string, url: string) =>
  runIn(ns, `require('http').get(${JSON.stringify(url)},{timeout:3000},(r)=>{let b='';r.on('data',(d)=>b+=d);r.on('end',()=>console.log(b.trim()))}).on('error',(e)=>console.log('error '+e.code)).on('timeout',function(){console.log('error timeout');this.destroy()})`)

describe.skipIf(skip || !engine)('containers on a tenant network (docker driver)', () => {
  let u: Underlay
  let overlays: Overlay[]
  let server: ChildProcess | undefined
  const node = `ovd-${randomUUID().slice(0, 8)}`
  const handles: InstanceHandle[] = []
  let resolvConf: string
  let tmp: string | undefined
  let pidHandle: InstanceHandle
  const peer = instance('100.64.0.2', 31501, 'process')
  const byPath = instance('100.64.0.3', 31502, 'docker')
  const byPid = instance('100.64.0.4', 31503, 'docker')
  const inUserns = instance('100.64.0.5', 31504, 'docker')
  const containers = usernsHere ? [byPath, byPid, inUserns] : [byPath, byPid]
  const all = [peer, ...containers]
  const where = new Map([[peer, 0], ...containers.map((c) => [c, 1] as const)])

  function desired(k: number, generation: number, placed: TDesiredInstance[]): TDesired {
    const endpoints = placed.map((i) => ({ ip: i.interfaces[0]!.ip, mac: i.interfaces[0]!.mac, node: u.nodes[where.get(i)!]!.ip, app: i.appName, ordinal: 0, ready: true }))
    const mine = placed.filter((i) => where.get(i) === k)
    return { type: 'desired', generation, instances: mine, networks: mine.length ? [{ ...net, peers: [...new Set(endpoints.map((e) => e.node))].filter((n) => n !== u.nodes[k]!.ip), endpoints }] : [] }
  }
  const driver = (join: 'path' | 'pid' | 'userns') =>
    createDockerDriver({ docker: engine!.docker, nodeName: node, logger: testLogger, engine: engine!.engine, ...(join === 'userns' ? { usernsAuto: true } : { netnsJoin: join }) })
  async function start(inst: TDesiredInstance, join: 'path' | 'pid' | 'userns'): Promise<InstanceHandle> {
    const o = overlays[1]!
    const p = await o.prepare(inst.instanceId)
    const h = await driver(join).start(inst, {}, { netns: p.netnsPath, resolvConf, attachNetns: (pid) => o.attach(inst.instanceId, pid) })
    handles.push(h)
    return h
  }
  const nsOf = (inst: TDesiredInstance) => `/run/netns/${overlayNames(u.nodes[where.get(inst)!]!.prefix).instanceNs(inst.instanceId)}`

  beforeAll(async () => {
    u = makeUnderlay(2)
    // What the overlay writes when the node runs the DNS responder (not here: it would live in the node's namespace).
    tmp = await mkdtemp(path.join(os.tmpdir(), 'alveary-ovd-'))
    resolvConf = path.join(tmp, 'resolv.conf')
    await writeFile(resolvConf, 'nameserver 100.64.0.1\n')
    overlays = u.nodes.map((n) => createOverlay({ names: overlayNames(n.prefix), vtep: n.ip, tools: createTools({ netns: n.ns }), log: testLogger, resyncMs: 3_600_000 }))
    overlays.forEach((o, k) => o.apply(desired(k, 1, all)))
    await Promise.all(overlays.map((o) => o.sync()))
    const p = await overlays[0]!.prepare(peer.instanceId)
    server = await serveIn(p.netnsPath, 8080, 'peer')
  })
  afterAll(async () => {
    server?.kill('SIGKILL')
    for (const h of handles) await h.stop(0).catch(() => {})
    if (engine) await removeNodeContainers(engine.docker, node)
    await Promise.all((overlays ?? []).map((o) => o.close()))
    u?.cleanup()
    if (tmp) await rm(tmp, { recursive: true, force: true })
  })

  it('runs containers at their address, joined by path and adopted by pid, reachable across nodes and on their published ports', async () => {
    await start(byPath, 'path')
    pidHandle = await start(byPid, 'pid')
    // In a user namespace of its own the engine must make the network namespace (runc mounts /sys in it): adopted by pid.
    if (usernsHere) await start(inUserns, 'userns')
    for (const c of containers) {
      const ip = c.interfaces[0]!.ip
      // From the process instance on the other node, through the VXLAN.
      expect(await waitFor(`${c.appName} ${ip} answers the peer`, async () => (await httpIn(nsOf(peer), `http://${ip}:8080/`)) === ip && ip, 20_000)).toBe(ip)
      // Its published port on node 1, from node 0.
      expect(await httpIn(u.nodes[0]!.ns, `http://${u.nodes[1]!.ip}:${c.spec.ports[0]!.hostPort}/`)).toBe(ip)
      // The network's resolver in place of the engine's.
      expect(await httpIn(nsOf(peer), `http://${ip}:8080/resolv.txt`)).toBe('nameserver 100.64.0.1')
    }
    // The adopted namespace is the container's own: its processes are in it.
    const pids = (await createTools().run('ip', ['netns', 'pids', overlayNames(u.nodes[1]!.prefix).instanceNs(byPid.instanceId)])).trim().split('\n').filter(Boolean)
    expect(pids.length).toBeGreaterThan(0)
    // And the container reaches its peer (out through eth0 and the VXLAN).
    expect(await tcpProbe(nsOf(byPid), peer.interfaces[0]!.ip, 8080)).toBe('peer')
  })

  it('gives a restarted container (adopted by pid) the same address', async () => {
    await pidHandle.stop(0)
    await driver('pid').release(byPid.instanceId)
    await start(byPid, 'pid')
    const ip = byPid.interfaces[0]!.ip
    expect(await waitFor('the new container answers at the old address', async () => (await httpIn(nsOf(peer), `http://${ip}:8080/`)) === ip && ip, 20_000)).toBe(ip)
  })

  it('leaves no namespaces, links or rules behind once the containers are gone', async () => {
    for (const h of handles.splice(0)) await h.stop(0)
    for (const i of containers) await driver('path').release(i.instanceId)
    overlays.forEach((o, k) => o.apply(desired(k, 2, [])))
    await Promise.all(overlays.map((o) => o.sync()))
    for (const n of u.nodes) expect(leftovers(n)).toEqual([])
  })
})
