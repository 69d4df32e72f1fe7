/**
 * npm run bench:migration -- [--moves 10] [--fill-mb 0] [--every-ms 20]
 *
 * A stateful app (examples/counter: counts up in its volume, serves the count over HTTP) on a
 * tenant network across two simulated nodes (network namespaces, real agent CLIs, overlay
 * networking), moved back and forth N times through the platform's moves, once with a `local`
 * volume (copied with rsync) and once with a `shared` one (re-attached). A prober inside the
 * tenant network (in the namespace of another instance of the tenant) requests the counter's IP
 * every 20 ms. Per move: downtime as the client saw it (last answer before the gap → first
 * answer after) and as the platform measured it (last ready at the source → first ready at the
 * target), bytes copied; over the run: whether any acknowledged count was lost (a later answer
 * lower than one already received) and whether the IP stayed the same. Baseline in the same
 * run: the largest gap between answers over a window of the same length without any move (the
 * prober's own floor on this machine). Needs root, iproute2, nftables, nsenter and rsync.
 *
 * Last line: JSON with moves, downtimeP50Ms, downtimeP99Ms, platformDowntimeP99Ms,
 * bytesCopied, dataLost, ipKept (local volume), and the same for the shared volume under `shared`.
 */
import { execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { z } from 'zod'
import { overlayUnavailable } from '../packages/agents/test/netns'
import { addMember, callerFor, OPERATOR, startTestBff, waitFor } from '../apps/bff/test/harness'
import { createSimCluster } from '../apps/bff/test/sim-cluster'

const { values } = parseArgs({ options: { moves: { type: 'string', default: '10' }, 'fill-mb': { type: 'string', default: '0' }, 'every-ms': { type: 'string', default: '20' } } })
const opts = z.object({ moves: z.coerce.number().int().min(2).max(200), 'fill-mb': z.coerce.number().int().min(0).max(4096), 'every-ms': z.coerce.number().int().min(5).max(1000) }).parse(values)
const log = (s: string) => process.stderr.write(`${s}\n`)

const why = overlayUnavailable()
if (why) {
  log(`bench:migration needs ${why.startsWith('not root') ? 'root' : why}`)
  process.exit(2)
}
try {
  execFileSync('rsync', ['--version'], { stdio: 'ignore' })
} catch {
  log('bench:migration needs rsync (apt-get install rsync)')
  process.exit(2)
}

/** One prober answer: when it was sent and received, and the count (null: failed). */
interface Answer {
  sent: number
  recv: number
  count: number | null
  instance: string | null
}

const PROBER = `const http=require('http');const [ip,port,every]=process.argv.slice(1);
setInterval(()=>{const sent=Date.now();let done=false;const out=(s)=>{if(!done){done=true;console.log(sent+' '+Date.now()+' '+s)}};
const req=http.get({host:ip,port:Number(port),path:'/',agent:false,timeout:1000},(res)=>{let b='';res.on('data',(d)=>(b+=d));res.on('end',()=>{try{const j=JSON.parse(b);out(j.count+' '+j.instance)}catch{out('-')}});res.on('error',()=>out('-'))});
req.on('timeout',()=>req.destroy());req.on('error',()=>out('-'))},Number(every))`

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length ? s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]! : NaN
}
/** Largest gap between consecutive answers received in [from, to] (the answers just outside bound it). */
function largestGap(answers: Answer[], from: number, to: number): number {
  const ok = answers.filter((a) => a.count !== null).map((a) => a.recv).sort((a, b) => a - b)
  const first = Math.max(0, ok.findIndex((t) => t >= from) - 1)
  let gap = 0
  for (let k = first + 1; k < ok.length && ok[k - 1]! <= to; k++) gap = Math.max(gap, ok[k]! - ok[k - 1]!)
  return gap
}
/** Answers lower than one the client had already received when it sent the request: an acknowledged write was lost. */
function lostAnswers(answers: Answer[]): number {
  const ok = answers.filter((a) => a.count !== null).sort((a, b) => a.recv - b.recv)
  let lost = 0
  for (const a of ok) {
    let acked = -1
    for (const b of ok) {
      if (b.recv >= a.sent) break
      acked = Math.max(acked, b.count!)
    }
    if (a.count! < acked) lost++
  }
  return lost
}

// Production-like lease settings, shortened: a busy machine must not make nodes look lost.
const bff = await startTestBff({ ALVEARY_HEARTBEAT_MS: '1000', ALVEARY_NODE_LEASE_MS: '10000', ALVEARY_SELF_FENCE_MS: '20000' })
const port = Number(new URL(bff.url).port)
let joinToken = ''
const sim = await createSimCluster({ count: 2, bffPort: () => port, joinToken: () => joinToken })
const probers: ReturnType<typeof spawn>[] = []
try {
  const op = await callerFor(bff, OPERATOR.email, OPERATOR.password)
  joinToken = (await op.joinTokens.create({ description: 'bench', ttlHours: 1, uses: 4 })).token
  for (const n of sim.nodes) sim.start(n)
  await waitFor('2 overlay nodes ready', async () => (await op.nodes.list()).filter((n) => n.state === 'ready').length === 2, 60_000)
  const tenantId = (await op.tenants.create({ slug: 'bench', name: 'Bench' })).id
  await addMember(bff, op, tenantId, { email: 'dev@bench.test', name: 'Dev', password: 'dev-password', role: 'owner' })
  const dev = await callerFor(bff, 'dev@bench.test', 'dev-password')
  await dev.networks.create({ tenantId, name: 'bench', cidr: '100.64.210.0/24' })
  const nodeIds = new Map((await op.nodes.list()).map((n) => [n.name, n.id]))
  const running = async (appId: string) => {
    const i = (await dev.apps.get({ tenantId, appId })).instances.find((x) => x.desiredState === 'running')
    return i?.state === 'running' && i.node && i.ip ? i : null
  }

  // The client's home: an idle instance of the same tenant on the same network.
  const peerApp = (await dev.apps.create({ tenantId, name: 'client', replicas: 1, network: 'bench', spec: { command: 'node', args: ['-e', 'setInterval(()=>{},1<<30)'], cpuMillis: 50, memoryMb: 32 } })).id
  const peer = await waitFor('the client instance running', () => running(peerApp), 60_000)
  const peerNs = sim.instanceNs(sim.byName(peer.node!.name), peer.id)

  async function run(driver: 'local' | 'shared') {
    const appId = (
      await dev.apps.create({
        tenantId,
        name: `counter-${driver}`,
        replicas: 1,
        network: 'bench',
        spec: { command: 'node', args: ['examples/counter/server.js'], cpuMillis: 100, memoryMb: 64, stopGraceSeconds: 5, ports: [{ name: 'http', containerPort: 8080 }], volumes: [{ name: 'data', driver, sizeMb: 64 + opts['fill-mb'] * 2, mountPath: '/data' }] },
      })
    ).id
    const first = await waitFor(`counter-${driver} running`, () => running(appId), 60_000)
    if (driver === 'local' && opts['fill-mb'] > 0) {
      // Ballast the counter does not touch: the pre-copy moves it, the final copy only the delta.
      await writeFile(path.join(sim.dataDir(sim.byName(first.node!.name)), 'volumes', first.volumes[0]!.id, 'data', 'ballast'), randomBytes(opts['fill-mb'] * 1024 * 1024))
    }
    const answers: Answer[] = []
    const prober = spawn('nsenter', [`--net=${peerNs}`, '--', process.execPath, '-e', PROBER, first.ip!, '8080', String(opts['every-ms'])], { stdio: ['ignore', 'pipe', 'inherit'] })
    probers.push(prober)
    let buf = ''
    prober.stdout!.setEncoding('utf8').on('data', (d: string) => {
      buf += d
      let i
      while ((i = buf.indexOf('\n')) >= 0) {
        const [sent, recv, count, instance] = buf.slice(0, i).split(' ')
        buf = buf.slice(i + 1)
        answers.push({ sent: Number(sent), recv: Number(recv), count: count === '-' ? null : Number(count), instance: instance ?? null })
      }
    })
    await waitFor('the prober getting answers', async () => answers.filter((a) => a.count !== null).length > 20, 30_000)

    const rows: { client: number; platform: number; bytes: number; ip: boolean; ms: number; steps: Record<string, number> }[] = []
    let failedMoves = 0
    let at = first
    for (let k = 0; k < opts.moves; k++) {
      const target = [...nodeIds.keys()].find((n) => n !== at.node!.name)!
      const t0 = Date.now()
      const move = await op.moves.start({ instanceId: at.id, targetNodeId: nodeIds.get(target)! })
      const done = await waitFor('the move to finish', async () => {
        const m = await op.moves.get({ moveId: move.id })
        return m.state === 'succeeded' || m.state === 'failed' ? m : null
      }, 180_000, 50)
      if (done.state !== 'succeeded') {
        // A failed move leaves the instance at the source: counted, and the run goes on from there.
        failedMoves++
        log(`  ${driver} move ${k + 1}/${opts.moves} failed: ${done.error}`)
        at = await waitFor('running at the source again', async () => {
          const i = await running(appId)
          return i && i.node!.name === at.node!.name ? i : null
        }, 60_000)
        continue
      }
      const after = await waitFor('running on the target', async () => {
        const i = await running(appId)
        return i && i.node!.name === target ? i : null
      }, 30_000)
      // Settled: the client has answers again for a while.
      await waitFor('answers after the move', async () => answers.filter((a) => a.count !== null && a.sent > Date.now() - 300).length > 3, 30_000, 50)
      const t1 = Date.now()
      const steps = Object.fromEntries(done.steps.map((st) => [st.name, st.startedAt && st.finishedAt ? st.finishedAt.getTime() - st.startedAt.getTime() : 0]))
      rows.push({ client: largestGap(answers, t0, t1), platform: done.downtimeMs ?? NaN, bytes: done.bytesCopied, ip: after.ip === first.ip && after.id === first.id, ms: t1 - t0, steps })
      log(`  ${driver} move ${k + 1}/${opts.moves} → ${target}: client ${rows.at(-1)!.client} ms, platform ${done.downtimeMs} ms, ${done.bytesCopied} B copied, move took ${done.finishedAt!.getTime() - done.createdAt.getTime()} ms (${done.steps.map((s) => `${s.name} ${s.startedAt && s.finishedAt ? s.finishedAt.getTime() - s.startedAt.getTime() : '-'}`).join(', ')})`)
      at = after
    }
    // Baseline: the same prober, the same length of time as a median move, nothing moving.
    const window = Math.max(1000, pct(rows.map((r) => r.ms), 50))
    const b0 = Date.now()
    await new Promise((r) => setTimeout(r, window))
    const baseline = largestGap(answers, b0, Date.now())
    prober.kill('SIGKILL')
    const client = rows.map((r) => r.client)
    const platform = rows.map((r) => r.platform)
    const served = new Set(answers.flatMap((a) => (a.instance ? [a.instance] : [])))
    return {
      moves: rows.length,
      failedMoves,
      downtimeP50Ms: pct(client, 50),
      downtimeP99Ms: pct(client, 99),
      platformDowntimeP50Ms: pct(platform, 50),
      platformDowntimeP99Ms: pct(platform, 99),
      bytesCopied: rows.reduce((s, r) => s + r.bytes, 0),
      dataLost: lostAnswers(answers),
      ipKept: rows.every((r) => r.ip) && served.size === 1,
      baselineGapMs: baseline,
      /** Median time of each step: where a move's time (and, from stop-source to wait-ready, its downtime) goes. */
      stepP50Ms: Object.fromEntries(Object.keys(rows[0]?.steps ?? {}).map((name) => [name, pct(rows.map((r) => r.steps[name]!), 50)])),
      requests: answers.length,
      failedRequests: answers.filter((a) => a.count === null).length,
    }
  }

  const local = await run('local')
  const shared = await run('shared')
  const row = (k: string, l: string | number | boolean, s: string | number | boolean) => console.log(`${k.padEnd(40)} ${String(l).padStart(12)} ${String(s).padStart(12)}`)
  console.log(`bench:migration — 2 simulated nodes (overlay), counter app, ${opts.moves} moves per volume driver, prober every ${opts['every-ms']} ms inside the tenant network${opts['fill-mb'] ? `, ${opts['fill-mb']} MiB ballast in the local volume` : ''}`)
  row('', 'local', 'shared')
  row('client downtime p50 (ms)', local.downtimeP50Ms, shared.downtimeP50Ms)
  row('client downtime p99 (ms; target < 1000)', local.downtimeP99Ms, shared.downtimeP99Ms)
  row('platform downtime p50 (ms)', local.platformDowntimeP50Ms, shared.platformDowntimeP50Ms)
  row('platform downtime p99 (ms)', local.platformDowntimeP99Ms, shared.platformDowntimeP99Ms)
  row('baseline: largest gap, no move (ms)', local.baselineGapMs, shared.baselineGapMs)
  row('bytes copied (all moves)', local.bytesCopied, shared.bytesCopied)
  row('acknowledged counts lost (target 0)', local.dataLost, shared.dataLost)
  row('same instance and IP throughout', local.ipKept, shared.ipKept)
  row('failed moves (kept at the source)', local.failedMoves, shared.failedMoves)
  row('requests (failed)', `${local.requests} (${local.failedRequests})`, `${shared.requests} (${shared.failedRequests})`)
  for (const name of Object.keys(local.stepP50Ms)) row(`  step ${name} p50 (ms)`, local.stepP50Ms[name]!, shared.stepP50Ms[name] ?? '-')
  const { moves, downtimeP50Ms, downtimeP99Ms, platformDowntimeP99Ms, bytesCopied, dataLost, ipKept } = local
  console.log(JSON.stringify({ moves, failedMoves: local.failedMoves, downtimeP50Ms, downtimeP99Ms, platformDowntimeP99Ms, bytesCopied, dataLost, ipKept, baselineGapMs: local.baselineGapMs, shared: { moves: shared.moves, failedMoves: shared.failedMoves, downtimeP50Ms: shared.downtimeP50Ms, downtimeP99Ms: shared.downtimeP99Ms, platformDowntimeP99Ms: shared.platformDowntimeP99Ms, bytesCopied: shared.bytesCopied, dataLost: shared.dataLost, ipKept: shared.ipKept } }))
} finally {
  for (const p of probers) p.kill('SIGKILL')
  await sim.cleanup()
  await bff.stop()
  await bff.dropDatabase()
}
