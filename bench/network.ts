/**
 * npm run bench:network — the overlay against the underlay it runs on, on two simulated
 * nodes (network namespaces on a 198.18.0.0/15 bridge, each driven by the agent's overlay
 * driver): TCP throughput (iperf3) and round-trip time instance↔instance through VXLAN vs
 * node↔node directly, and the time from "a moved instance runs on its new node" to "a peer
 * reaches it at its old address". Needs root, iproute2, nftables and iperf3.
 *
 * Throughput is measured in rounds that alternate overlay and underlay, and compared by
 * median: on a shared machine a single run of each swings by ±30% with the neighbours' load.
 *
 *   npm run bench:network -- --seconds 5 --rounds 3 --rtts 2000
 * Last line: JSON with overlayGbps, underlayGbps, ratio, rttOverlayMs, rttUnderlayMs, reachAfterMoveMs.
 */
import { execFileSync, spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { parseArgs } from 'node:util'
import pino from 'pino'
import type { TDesired, TDesiredInstance } from '@alveary/core/protocol'
import { createTools } from '../packages/agents/src/network/exec'
import { overlayNames } from '../packages/agents/src/network/names'
import { createOverlay } from '../packages/agents/src/network/overlay'
import { makeUnderlay, overlayUnavailable, runIn, serveIn } from '../packages/agents/test/netns'

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '3' }, rounds: { type: 'string', default: '5' }, rtts: { type: 'string', default: '2000' }, moves: { type: 'string', default: '5' } } })
const SECONDS = Number(values.seconds)
const ROUNDS = Number(values.rounds)
const RTTS = Number(values.rtts)
const MOVES = Number(values.moves)
for (const [flag, v, max] of [['seconds', SECONDS, 60], ['rounds', ROUNDS, 50], ['rtts', RTTS, 100_000], ['moves', MOVES, 100]] as const) {
  if (!Number.isInteger(v) || v < 1 || v > max) {
    console.error(`--${flag} must be a whole number from 1 to ${max}`)
    process.exit(2)
  }
}

const why = overlayUnavailable()
if (why) {
  console.error(`bench:network needs ${why.startsWith('not root') ? 'root' : why}`)
  process.exit(1)
}
try {
  execFileSync('iperf3', ['--version'], { stdio: 'ignore' })
} catch {
  console.error('bench:network needs iperf3 (apt-get install iperf3)')
  process.exit(1)
}

const log = pino({ level: 'warn' })
const u = makeUnderlay(2)
const network = { networkId: randomUUID(), vxlanId: 4096, cidr: '100.64.0.0/24', gateway: '100.64.0.1', gatewayMac: '02:a0:00:10:00:01' }
const mac = (ip: string) => `02:a1:${ip.split('.').map((o) => Number(o).toString(16).padStart(2, '0')).join(':')}`
const inst = (ip: string): TDesiredInstance => ({
  instanceId: randomUUID(),
  tenantId: randomUUID(),
  runAs: { uid: 200_000, gid: 200_000 },
  appId: randomUUID(),
  appName: 'bench',
  ordinal: 0,
  desiredState: 'running',
  generation: 1,
  spec: { driver: 'process', image: null, command: 'node', args: [], env: {}, ports: [], cpuMillis: 100, memoryMb: 64, restartPolicy: 'always', stopGraceSeconds: 1 },
  interfaces: [{ networkId: network.networkId, ip, mac: mac(ip), prefixLength: 24, gateway: network.gateway }],
})
const a = inst('100.64.0.2')
const b = inst('100.64.0.3')
const mover = inst('100.64.0.4')
const placement = new Map<TDesiredInstance, number>([
  [a, 0],
  [b, 1],
  [mover, 1],
])
const overlays = u.nodes.map((n) => createOverlay({ names: overlayNames(n.prefix), vtep: n.ip, tools: createTools({ netns: n.ns }), log, resyncMs: 3_600_000 }))
let generation = 0
function desired(node: number): TDesired {
  const all = [...placement]
  const endpoints = all.map(([i, k]) => ({ ip: i.interfaces[0]!.ip, mac: i.interfaces[0]!.mac, node: u.nodes[k]!.ip, app: 'bench', ordinal: 0 }))
  return {
    type: 'desired',
    generation,
    instances: all.filter(([, k]) => k === node).map(([i]) => i),
    networks: [{ ...network, peers: u.nodes.filter((_, k) => k !== node).map((n) => n.ip), endpoints }],
  }
}
const apply = () => {
  generation++
  overlays.forEach((o, k) => o.apply(desired(k)))
}
const nsOf = (i: TDesiredInstance, node: number) => `/run/netns/${overlayNames(u.nodes[node]!.prefix).instanceNs(i.instanceId)}`

async function iperf(serverNs: string, clientNs: string, host: string): Promise<number> {
  const server = spawn('nsenter', [`--net=${serverNs}`, '--', 'iperf3', '-s', '-1', '-p', '5201', '--forceflush'], { stdio: ['ignore', 'pipe', 'ignore'] })
  try {
    await new Promise((r) => server.stdout!.once('data', r)) // "Server listening on 5201"
    const out = execFileSync('nsenter', [`--net=${clientNs}`, '--', 'iperf3', '-c', host, '-p', '5201', '-t', String(SECONDS), '-J'], { timeout: (SECONDS + 20) * 1000 })
    const r = JSON.parse(out.toString()) as { end: { sum_received: { bits_per_second: number } } }
    return r.end.sum_received.bits_per_second / 1e9
  } finally {
    server.kill('SIGKILL')
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((x, y) => x - y)
  return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}

/** Median TCP round trip of `n` one-byte ping-pongs on one connection. */
async function rtt(serverNs: string, clientNs: string, host: string): Promise<number> {
  const echo = spawn('nsenter', [`--net=${serverNs}`, '--', process.execPath, '-e', `require('net').createServer(s=>{s.setNoDelay(true);s.on('data',d=>s.write(d))}).listen(5302,()=>console.log('ready'))`], { stdio: ['ignore', 'pipe', 'inherit'] })
  await new Promise((r) => echo.stdout!.once('data', r))
  try {
    const out = await runIn(
      clientNs,
      `const s=require('net').connect(5302,${JSON.stringify(host)});s.setNoDelay(true);const t=[];let t0;const go=()=>{t0=process.hrtime.bigint();s.write('x')};` +
        `s.on('data',()=>{t.push(Number(process.hrtime.bigint()-t0)/1e6);if(t.length<${RTTS})go();else{t.sort((a,b)=>a-b);console.log(t[t.length>>1]);process.exit(0)}});s.on('connect',go)`,
      120_000,
    )
    return Number(out)
  } finally {
    echo.kill('SIGKILL')
  }
}

/** Moves `mover` between the nodes; per move, the time from its server listening on the new node to the peer's first answer. */
async function reachAfterMove(): Promise<number[]> {
  const times: number[] = []
  let at = 1
  const peer = nsOf(a, 0)
  for (let k = 0; k < MOVES; k++) {
    const to = at === 1 ? 0 : 1
    // The peer keeps trying the mover's address every 5 ms and prints when it first answers from the new node.
    const prober = spawn('nsenter', [`--net=${peer}`, '--', process.execPath, '-e',
      `const net=require('net');const want='node${to}';const tryOnce=()=>{const s=net.connect(8080,'100.64.0.4');let b='';s.setTimeout(200,()=>s.destroy());` +
        `s.on('data',d=>{b+=d;if(b.includes(want)){console.log(Date.now());process.exit(0)}});s.on('error',()=>{});s.on('close',()=>setTimeout(tryOnce,5))};tryOnce()`], { stdio: ['ignore', 'pipe', 'inherit'] })
    const answered = new Promise<number>((r) => prober.stdout!.once('data', (d: Buffer) => r(Number(d.toString().trim()))))
    placement.set(mover, to)
    apply()
    // As the agent does: the instance starts once its namespace is prepared.
    const prepared = await overlays[to]!.prepare(mover.instanceId)
    const server = await serveIn(prepared.netnsPath, 8080, `node${to}`)
    const runningAt = Date.now()
    times.push((await answered) - runningAt)
    await Promise.all(overlays.map((o) => o.sync()))
    server.kill('SIGKILL')
    at = to
  }
  return times
}

// Interrupted (Ctrl-C, a timeout): still remove every namespace and link this run made.
for (const sig of ['SIGINT', 'SIGTERM'] as const)
  process.once(sig, () => {
    u.cleanup()
    process.exit(130)
  })
try {
  apply()
  await Promise.all(overlays.map((o) => o.sync()))
  for (const [i, k] of placement) await overlays[k]!.prepare(i.instanceId)
  const overlayRuns: number[] = []
  const underlayRuns: number[] = []
  for (let k = 0; k < ROUNDS; k++) {
    overlayRuns.push(await iperf(nsOf(b, 1), nsOf(a, 0), b.interfaces[0]!.ip))
    underlayRuns.push(await iperf(`/run/netns/${u.nodes[1]!.ns}`, `/run/netns/${u.nodes[0]!.ns}`, u.nodes[1]!.ip))
  }
  const overlayGbps = median(overlayRuns)
  const underlayGbps = median(underlayRuns)
  const rttOverlayMs = await rtt(nsOf(b, 1), nsOf(a, 0), b.interfaces[0]!.ip)
  const rttUnderlayMs = await rtt(`/run/netns/${u.nodes[1]!.ns}`, `/run/netns/${u.nodes[0]!.ns}`, u.nodes[1]!.ip)
  const moves = await reachAfterMove()
  const reachAfterMoveMs = median(moves)
  const ratio = overlayGbps / underlayGbps
  const row = (k: string, v: string) => console.log(`${k.padEnd(34)} ${v}`)
  const gbps = (runs: number[]) => runs.map((x) => x.toFixed(2)).join(', ')
  console.log(`bench:network — 2 simulated nodes, ${ROUNDS} rounds of ${SECONDS} s iperf3 per path, ${RTTS} round trips, ${MOVES} moves`)
  row('TCP throughput, overlay (VXLAN)', `${overlayGbps.toFixed(2)} Gbit/s median (all: ${gbps(overlayRuns)})`)
  row('TCP throughput, underlay', `${underlayGbps.toFixed(2)} Gbit/s median (all: ${gbps(underlayRuns)})`)
  row('ratio of medians (target >= 0.8)', ratio.toFixed(2))
  row('RTT p50, overlay', `${rttOverlayMs.toFixed(3)} ms`)
  row('RTT p50, underlay', `${rttUnderlayMs.toFixed(3)} ms`)
  row('reach after move p50 (target < 1 s)', `${reachAfterMoveMs} ms (all: ${moves.join(', ')})`)
  console.log(JSON.stringify({ rounds: ROUNDS, overlayGbps: +overlayGbps.toFixed(3), underlayGbps: +underlayGbps.toFixed(3), ratio: +ratio.toFixed(3), rttOverlayMs: +rttOverlayMs.toFixed(4), rttUnderlayMs: +rttUnderlayMs.toFixed(4), reachAfterMoveMs }))
} finally {
  placement.clear()
  apply()
  await Promise.all(overlays.map((o) => o.sync())).catch(() => {})
  await Promise.all(overlays.map((o) => o.close()))
  u.cleanup()
}
