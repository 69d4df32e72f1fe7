import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { TDesired } from '@alveary/core/protocol'
import { overlayNames } from '../src/network/names'
import { makeInstance } from './helpers'
import { leftovers, makeUnderlay, overlayUnavailable, runIn, type Underlay } from './netns'

// Names too many for a UDP answer, asked from inside an instance's namespace the way its
// programs ask: the agent's network driver (DNS responder included) runs inside a simulated
// node; glibc's resolver (getent) gets a truncated UDP answer and asks again over TCP, through
// the router's DNAT of the gateway's port 53 for both protocols.
const skip = overlayUnavailable()
const RUNNER = path.resolve(import.meta.dirname, 'fixtures/network-driver.ts')
/** More A records than 512 bytes hold (16 bytes each after the header and question: 30 at most). */
const REPLICAS = 40

describe.skipIf(skip)('tenant-network names over TCP', () => {
  let u: Underlay
  let driver: ChildProcess | null = null
  let instanceNs: string
  let networkId: string
  let metricsPort: number
  const many = Array.from({ length: REPLICAS }, (_, k) => `100.64.0.${k + 10}`)

  beforeAll(async () => {
    u = makeUnderlay(1)
    const n = u.nodes[0]!
    networkId = randomUUID()
    const inst = makeInstance({ appName: 'web', interfaces: [{ networkId, ip: '100.64.0.2', mac: '02:a1:64:40:00:02', prefixLength: 24, gateway: '100.64.0.1' }] })
    instanceNs = overlayNames(n.prefix).instanceNs(inst.instanceId)
    // The app's instances need not run for their names: the endpoints are what the control plane says.
    const endpoints = [
      { ip: '100.64.0.2', mac: '02:a1:64:40:00:02', node: n.ip, app: 'web', ordinal: 0, ready: true },
      ...many.map((ip, k) => ({ ip, mac: `02:a1:64:40:00:${(k + 10).toString(16).padStart(2, '0')}`, node: '198.18.255.1', app: 'many', ordinal: k, ready: true })),
    ]
    const desired: TDesired = {
      type: 'desired',
      generation: 2,
      instances: [inst],
      networks: [{ networkId, vxlanId: 4311, cidr: '100.64.0.0/24', gateway: '100.64.0.1', gatewayMac: '02:a0:00:10:d7:01', peers: ['198.18.255.1'], endpoints }],
      loadBalancers: [],
    }
    const child = spawn('nsenter', [`--net=/run/netns/${n.ns}`, '--', process.execPath, '--import', 'tsx', RUNNER, n.prefix, n.ip, JSON.stringify(desired), 'hold'], {
      cwd: path.resolve(import.meta.dirname, '..'),
      stdio: ['pipe', 'pipe', 'inherit'],
    })
    driver = child
    metricsPort = await new Promise<number>((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => {
        const m = /ready (\d+)/.exec(d.toString())
        if (m) resolve(Number(m[1]))
      })
      child.once('exit', (code) => reject(new Error(`the network driver exited ${code} before it was ready`)))
    })
  }, 120_000)

  afterAll(async () => {
    if (driver && driver.exitCode === null) {
      const exited = new Promise((r) => driver!.once('exit', r))
      driver.stdin!.end()
      await exited
    }
    u?.cleanup()
  }, 60_000)

  it('answers a large app’s UDP query truncated (TC) and whole over TCP, through the gateway’s port 53', async () => {
    // A raw query from the instance's namespace to its gateway, over each transport.
    const ask = (transport: 'udp' | 'tcp') =>
      runIn(
        `/run/netns/${instanceNs}`,
        `const q=Buffer.from([0x12,0x34,1,0,0,1,0,0,0,0,0,0,4,...Buffer.from('many'),0,0,1,0,1]);` +
          (transport === 'udp'
            ? `const s=require('dgram').createSocket('udp4');s.on('message',(m)=>{console.log(JSON.stringify({tc:!!(m.readUInt16BE(2)&0x200),n:m.readUInt16BE(6),bytes:m.length}));process.exit(0)});s.send(q,53,'100.64.0.1')`
            : `const c=require('net').connect(53,'100.64.0.1',()=>c.write(Buffer.concat([Buffer.from([0,q.length]),q])));let b=Buffer.alloc(0);c.on('data',(d)=>{b=Buffer.concat([b,d]);if(b.length>=2&&b.length>=2+b.readUInt16BE(0)){const m=b.subarray(2);console.log(JSON.stringify({tc:!!(m.readUInt16BE(2)&0x200),n:m.readUInt16BE(6),bytes:m.length}));process.exit(0)}})`),
        20_000,
      ).then((out) => JSON.parse(out) as { tc: boolean; n: number; bytes: number })
    const udp = await ask('udp')
    expect(udp.tc).toBe(true)
    expect(udp.bytes).toBeLessThanOrEqual(512)
    expect(await ask('tcp')).toMatchObject({ tc: false, n: REPLICAS })
  })

  it('resolves every instance of the app with the libc resolver inside the namespace (it retries over TCP)', async () => {
    const out = await new Promise<string>((resolve, reject) =>
      execFile('ip', ['netns', 'exec', instanceNs, 'getent', 'ahostsv4', 'many'], { timeout: 30_000 }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}: ${stderr}`)) : resolve(stdout))),
    )
    const ips = [...new Set(out.split('\n').filter(Boolean).map((l) => l.split(/\s+/)[0]!))]
    expect(ips.sort()).toEqual([...many].sort())
  })

  it('counts the queries by network, type, transport and result in the agent’s metrics', async () => {
    const body = await runIn(u.nodes[0]!.ns, `fetch('http://127.0.0.1:${metricsPort}/metrics').then((r)=>r.text()).then((t)=>console.log(t))`, 20_000)
    const count = (transport: string) => Number(new RegExp(`alveary_agent_dns_queries_total\\{network="${networkId}",type="A",transport="${transport}",result="answered"\\} (\\d+)`).exec(body)?.[1] ?? 0)
    // The raw UDP query and glibc's truncated one; the raw TCP query and glibc's retry.
    expect(count('udp')).toBeGreaterThanOrEqual(2)
    expect(count('tcp')).toBeGreaterThanOrEqual(2)
    expect(Number(/alveary_agent_dns_query_duration_seconds_count\{transport="tcp",result="answered"\} (\d+)/.exec(body)?.[1])).toBeGreaterThanOrEqual(2)
  })

  it('leaves nothing behind once the driver stops', async () => {
    const exited = new Promise((r) => driver!.once('exit', r))
    driver!.stdin!.end()
    expect(await exited).toBe(0)
    expect(leftovers(u.nodes[0]!)).toEqual([])
  }, 60_000)
})
