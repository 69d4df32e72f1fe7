/**
 * npm run bench:agents -- [--agents 1000,5000] [--seconds 30] [--heartbeat-ms 5000] [--phases throughput,fanout,reconnect] [--profile DIR]
 *
 * N simulated agents over real WebSockets against one BFF process (real PostgreSQL). The
 * BFF runs as its own process so its CPU is measured apart from the simulated agents'.
 * The simulated agents reconnect with the real agent's connection code (backoff, retry hints).
 * - throughput: heartbeats/s handled and the BFF's CPU at each size;
 * - fanout: time from a desired-state change (generation bumped and announced, as core
 *   does) to the agent's acknowledgement being durable (its heartbeat carrying the applied
 *   generation answered with a lease), for 1 node (the baseline) and for every node at once;
 * - reconnect: the BFF is restarted; time until every agent is welcomed and has its desired
 *   state again, with the gateway's admission control and, as the baseline in the same
 *   run, without it (ALVEARY_AGENT_MAX_CONCURRENT_HELLOS very high).
 * Ends with one line of JSON.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { randomBytes } from 'node:crypto'
import { createChangeBus, openDatabase, systemClock } from '@alveary/core'
import { CloseCode, PROTOCOL_VERSION, ZNodeInfo, type THello, type TServerMessage } from '@alveary/core/protocol'
import pg from 'pg'
import pino from 'pino'
import { z } from 'zod'
import { createConnection, type Connection } from '../packages/agents/src/connection'
import { freshDatabase } from '../apps/bff/src/fresh-database'
import { nodeDataOf } from '../packages/core/src/agents/join'
import { hashToken } from '../packages/core/src/auth/secrets'
import { cleanupOnInterrupt } from './interrupt'

const { values } = parseArgs({
  options: {
    agents: { type: 'string', default: '1000,5000' },
    seconds: { type: 'string', default: '30' },
    'heartbeat-ms': { type: 'string', default: '5000' },
    phases: { type: 'string', default: 'throughput,fanout,reconnect' },
    /** Writes a V8 CPU profile of each BFF process into this folder (node --cpu-prof). */
    profile: { type: 'string' },
  },
})
const PHASES = ['throughput', 'fanout', 'reconnect'] as const
const opts = z
  .object({
    agents: z.string().transform((s, ctx) => {
      const xs = s.split(',').map(Number)
      if (xs.some((x) => !Number.isInteger(x) || x < 1)) ctx.addIssue({ code: 'custom', message: '--agents takes sizes like 1000,5000' })
      return xs.sort((a, b) => a - b)
    }),
    seconds: z.coerce.number().int().min(5),
    'heartbeat-ms': z.coerce.number().int().min(100),
    phases: z.string().transform((s) => new Set(z.array(z.enum(PHASES)).parse(s.split(',')))),
    profile: z.string().optional(),
  })
  .parse(values)
const root = path.resolve(import.meta.dirname, '..')
const log = (s: string) => process.stderr.write(`${s}\n`)
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const TICKS = 100 // USER_HZ on Linux
const quiet = pino({ level: 'silent' })
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length ? Math.round(s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!) : NaN
}
async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs: number) {
  const end = performance.now() + timeoutMs
  while (!(await cond())) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(20)
  }
}

const db = await freshDatabase()
const port = 20000 + Math.floor(Math.random() * 10000)
const base = `http://127.0.0.1:${port}`
let bff: ChildProcess | null = null
/** Starts the BFF and resolves once it answers /healthz (at that instant). */
async function startBff(extraEnv: Record<string, string> = {}): Promise<number> {
  const child = spawn(process.execPath, [...(opts.profile ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(opts.profile)] : []), '--import', 'tsx', path.join(root, 'apps/bff/src/main.ts')], {
    cwd: root,
    env: {
      ...process.env,
      DATABASE_URL: db.url,
      BFF_PORT: String(port),
      BFF_HOST: '127.0.0.1',
      ALVEARY_OPERATOR_PASSWORD: 'bench-password',
      ALVEARY_HEARTBEAT_MS: String(opts['heartbeat-ms']),
      ALVEARY_NODE_LEASE_MS: '600000',
      // Every simulated agent comes from 127.0.0.1; a real fleet comes from many addresses.
      ALVEARY_AGENT_MAX_PENDING_PER_IP: '100000',
      LOG_LEVEL: 'error',
      ...extraEnv,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  })
  bff = child
  await until('the BFF to answer /healthz', () => fetch(`${base}/healthz`).then((r) => r.ok, () => false), 120_000)
  return performance.now()
}
async function stopBff() {
  const child = bff
  if (!child || child.exitCode !== null) return
  child.kill('SIGTERM')
  await new Promise((r) => child.once('exit', r))
}
const cpuSeconds = () => {
  const f = readFileSync(`/proc/${bff!.pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return (Number(f[11]) + Number(f[12])) / TICKS
}
const frames = async () => {
  const text = await (await fetch(`${base}/metrics`)).text()
  return Number(/alveary_agent_frames_total\{type="heartbeat"\} (\d+)/.exec(text)?.[1] ?? 0)
}
const trpc = async (proc: string, input: unknown, cookie?: string) => {
  const res = await fetch(`${base}/trpc/${proc}`, { method: 'POST', headers: { 'content-type': 'application/json', ...(cookie && { cookie }) }, body: JSON.stringify({ json: input }) })
  if (!res.ok) throw new Error(`${proc}: ${res.status} ${await res.text()}`)
  return { body: (await res.json()) as { result: { data: { json: any } } }, cookie: res.headers.get('set-cookie')?.split(';')[0] }
}

/**
 * One simulated agent, behaving on the wire like alveary-agent: full status after every
 * welcome and desired state, the applied generation acknowledged at once (a heartbeat),
 * heartbeats at the server's interval, reconnects through the agent's own connection code.
 */
interface Sim {
  name: string
  nodeId: string | null
  conn: Connection
  welcomed: boolean
  /** When the last welcome / desired state arrived (performance.now()). */
  welcomedAt: number
  desiredAt: number
  generation: number
  /** Heartbeats sent and leases received on this connection: the n-th lease answers the n-th heartbeat. */
  beatsSent: number
  leases: number
  /** The heartbeat that acknowledged `generation` (its index), and when its lease came back. */
  ackBeat: number
  ackedGeneration: number
  ackedAt: number
  /** Closes the connection and stops heartbeating (for good). */
  stop(): Promise<void>
}
const sims: Sim[] = []
let stopping = false

const nodeInfo = (name: string) => ({ name, address: '198.18.0.1', labels: {}, cpuMillis: 4000, memoryMb: 8192, drivers: ['process'], agentVersion: 'bench' })

/** Starts agent `i` with a join token, or as a node registered beforehand (`registered`: its credential). */
function startSim(i: number, token: string, registered?: { name: string; nodeId: string; credential: string }): Sim {
  let credential: { nodeId: string; credential: string } | null = registered ? { nodeId: registered.nodeId, credential: registered.credential } : null
  const runId = crypto.randomUUID()
  let timer: NodeJS.Timeout | null = null
  const sim: Sim = { name: registered?.name ?? `sim-${i}-${runId.slice(0, 4)}`, nodeId: null, welcomed: false, welcomedAt: 0, desiredAt: 0, generation: -1, beatsSent: 0, leases: 0, ackBeat: -1, ackedGeneration: -1, ackedAt: 0, conn: null!, stop: async () => {
    if (timer) clearTimeout(timer)
    await sim.conn.close()
  } }
  const beat = () => {
    if (sim.conn.send({ type: 'heartbeat', cpuUsedMillis: 100, memoryUsedMb: 256, appliedGeneration: Math.max(0, sim.generation) })) sim.beatsSent++
  }
  const hello = (): THello => ({
    type: 'hello',
    protocolVersion: PROTOCOL_VERSION,
    auth: credential ?? { joinToken: token },
    node: nodeInfo(sim.name),
    runId,
  })
  const onMessage = (m: TServerMessage) => {
    if (m.type === 'welcome') {
      sim.nodeId = m.nodeId
      if (m.credential) credential = { nodeId: m.nodeId, credential: m.credential }
      sim.welcomed = true
      sim.welcomedAt = performance.now()
      sim.beatsSent = sim.leases = 0
      sim.ackBeat = -1
      sim.conn.resetBackoff()
      sim.conn.send({ type: 'status', full: true, instances: [] })
      // Heartbeats at the configured interval, phases spread at random like a real fleet.
      if (timer) clearTimeout(timer)
      timer = setTimeout(function next() {
        beat()
        timer = setTimeout(next, opts['heartbeat-ms'])
      }, Math.random() * opts['heartbeat-ms'])
    } else if (m.type === 'desired') {
      sim.desiredAt = performance.now()
      sim.generation = m.generation
      beat()
      sim.ackBeat = sim.beatsSent
      sim.conn.send({ type: 'status', full: true, instances: [] })
    } else if (m.type === 'lease') {
      sim.leases++
      if (sim.ackBeat === sim.leases) {
        sim.ackedGeneration = sim.generation
        sim.ackedAt = performance.now()
      }
    }
  }
  sim.conn = createConnection({
    url: `ws://127.0.0.1:${port}/agent`,
    logger: quiet,
    hello,
    onMessage,
    onClose: (code, _reason, hintMs) => {
      sim.welcomed = false
      if (timer) clearTimeout(timer)
      if (!stopping && !restarting) closes.set(code, (closes.get(code) ?? 0) + 1)
      // 1006 covers both a refused connection (BFF down) and a refused upgrade: the hint tells them apart.
      if (restarting) {
        const k = hintMs !== null ? 'told when' : String(code)
        restartCloses.set(k, (restartCloses.get(k) ?? 0) + 1)
      }
      // Joined, but the welcome with the credential was lost: join again under another name.
      if (code === CloseCode.nameTaken && !credential) sim.name = `${sim.name}-again`
      return 'reconnect'
    },
  })
  sim.conn.start()
  return sim
}
let restarting = false
/** Connections that closed outside a restart, by close code (1006: refused upgrades, dropped sockets). */
const closes = new Map<number, number>()
/** During a restart: attempts that failed, by close code, and upgrades refused with a time to come back. */
const restartCloses = new Map<string, number>()

const result: Record<string, unknown> = { heartbeatMs: opts['heartbeat-ms'], fleet: opts.phases.has('throughput') ? 'joined' : 'registered' }
const cleanup = cleanupOnInterrupt(async () => {
  stopping = true
  await Promise.all(sims.map((s) => s.stop()))
  await stopBff()
  await db.drop()
})
try {
  await startBff()
  const { cookie } = await trpc('auth.login', { email: 'operator@alveary.local', password: 'bench-password' })
  // A join takes its token's row lock until it commits: joins with one token go one at a time, so the fleet joins with one token per 250 agents.
  const tokens: string[] = []
  for (let k = 0; k < Math.ceil(opts.agents.at(-1)! / 250); k++)
    tokens.push((await trpc('joinTokens.create', { description: `bench ${k}`, ttlHours: 2, uses: 250 }, cookie)).body.result.data.json.token as string)

  /**
   * Without the throughput phase (which reports join times) the fleet is registered in the
   * database directly, as joins would leave it, and connects with credentials: thousands of
   * joins (a transaction, an audit record and an event each) take minutes on a busy machine
   * and are not what the other phases measure.
   */
  const registered: { name: string; nodeId: string; credential: string }[] = []
  if (!opts.phases.has('throughput')) {
    const database = openDatabase(db.url, { max: 2 })
    for (let i = 0; i < opts.agents.at(-1)!; i++) registered.push({ name: `sim-${i}`, nodeId: crypto.randomUUID(), credential: `nc_${randomBytes(24).toString('base64url')}` })
    await database.prisma.node.createMany({ data: registered.map((r) => ({ id: r.nodeId, name: r.name, credentialHash: hashToken(r.credential), ...nodeDataOf(ZNodeInfo.parse(nodeInfo(r.name))) })) })
    await database.close()
  }

  const grow = async (n: number) => {
    const t0 = performance.now()
    // Joins in groups of 200 (a join is a transaction, an audit record and an event; not what is measured here).
    for (let i = sims.length; i < n; i += 200) {
      const batch = Array.from({ length: Math.min(200, n - i) }, (_, k) => startSim(i + k, tokens[(i + k) % tokens.length]!, registered[i + k]))
      sims.push(...batch)
      await until('a batch of agents to join', () => batch.every((s) => s.welcomed && s.generation >= 0), 300_000).catch((err) => {
        const w = batch.filter((s) => s.welcomed).length
        const d = batch.filter((s) => s.generation >= 0).length
        throw new Error(`${(err as Error).message}: ${sims.length} started, of the last batch ${w} welcomed, ${d} with desired state; closes ${JSON.stringify(Object.fromEntries(closes))}`)
      })
      if ((i / 200) % 5 === 0) log(`${sims.length} agents joined`)
    }
    return (performance.now() - t0) / 1000
  }

  // Throughput: heartbeats handled at each size.
  const throughput: { agents: number; heartbeatsPerSec: number; expectedPerSec: number; bffCpuPercent: number; joinSeconds: number }[] = []
  for (const n of opts.phases.has('throughput') ? opts.agents : [opts.agents.at(-1)!]) {
    const joinSeconds = await grow(n)
    if (!opts.phases.has('throughput')) break
    await sleep(opts['heartbeat-ms'] * 2) // every agent has reached its steady rhythm
    const [f0, c0, w0] = [await frames(), cpuSeconds(), performance.now()]
    await sleep(opts.seconds * 1000)
    const [f1, c1, w1] = [await frames(), cpuSeconds(), performance.now()]
    const secs = (w1 - w0) / 1000
    const r = { agents: n, heartbeatsPerSec: Math.round((f1 - f0) / secs), expectedPerSec: Math.round((n * 1000) / opts['heartbeat-ms']), bffCpuPercent: Math.round(((c1 - c0) / secs) * 1000) / 10, joinSeconds: Math.round(joinSeconds * 10) / 10 }
    log(`${n} agents: ${r.heartbeatsPerSec} heartbeats/s handled (expected ${r.expectedPerSec}), BFF CPU ${r.bffCpuPercent}% of one core, joined in ${r.joinSeconds}s`)
    throughput.push(r)
  }
  if (throughput.length) result.results = throughput
  const n = sims.length

  if (opts.phases.has('fanout')) {
    // A desired-state change as core makes one: bump the generation, announce it on the bus.
    const pool = new pg.Pool({ connectionString: db.url, max: 2 })
    const bus = await createChangeBus(pool, { clock: systemClock })
    const byNode = new Map(sims.map((s) => [s.nodeId!, s]))
    const change = async (targets: Sim[]) => {
      const t0 = performance.now()
      const rows = await pool.query<{ id: string; desiredGeneration: number }>('UPDATE "Node" SET "desiredGeneration" = "desiredGeneration" + 1 WHERE id = ANY($1::uuid[]) RETURNING id, "desiredGeneration"', [targets.map((s) => s.nodeId)])
      const want = new Map(rows.rows.map((r) => [r.id, r.desiredGeneration]))
      for (const r of rows.rows) bus.publish({ kind: 'node-desired', nodeId: r.id })
      await until('every changed agent to acknowledge', () => [...want].every(([id, g]) => byNode.get(id)!.ackedGeneration >= g), 120_000)
      return targets.map((s) => s.ackedAt - t0)
    }
    const one: number[] = []
    for (let k = 0; k < 20; k++) one.push(...(await change([sims[Math.floor(Math.random() * n)]!])))
    const all: number[] = []
    for (let k = 0; k < 3; k++) {
      all.push(...(await change(sims)))
      await sleep(1_000)
    }
    await bus.close()
    await pool.end()
    result.fanout = { oneNodeP50Ms: pct(one, 50), oneNodeP99Ms: pct(one, 99), agents: n, allP50Ms: pct(all, 50), allP99Ms: pct(all, 99), allMaxMs: pct(all, 100) }
    log(`desired change → acknowledged: 1 node p50 ${pct(one, 50)} ms, p99 ${pct(one, 99)} ms (20 changes); ${n} nodes at once p50 ${pct(all, 50)} ms, p99 ${pct(all, 99)} ms, max ${pct(all, 100)} ms (3 rounds)`)
  }

  if (opts.phases.has('reconnect')) {
    const restart = async (label: string, env: Record<string, string>) => {
      restarting = true
      restartCloses.clear()
      const down = performance.now()
      await stopBff()
      const up = await startBff(env)
      // Agents can be back before the benchmark's poll of /healthz notices the BFF is up: counted as back at once.
      await until(`${n} agents to be back`, () => sims.every((s) => s.welcomed && s.desiredAt > down), 300_000)
      restarting = false
      const back = sims.map((s) => Math.max(0, s.desiredAt - up))
      const r = { p50Ms: pct(back, 50), p99Ms: pct(back, 99), allBackMs: pct(back, 100), downMs: Math.round(up - down) }
      log(`BFF restart (${label}): ${n} agents back (welcomed, desired state received) p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms, all ${r.allBackMs} ms after the BFF answered (it was down ${r.downMs} ms)`)
      // Where the time went: how many were back in each second after the BFF answered, and the attempts that failed meanwhile.
      const perSecond: number[] = []
      for (const ms of back) perSecond[Math.floor(ms / 1000)] = (perSecond[Math.floor(ms / 1000)] ?? 0) + 1
      log(`  back per second: ${Array.from(perSecond, (x) => x ?? 0).join(' ')}; failed attempts: ${JSON.stringify(Object.fromEntries(restartCloses))}`)
      return r
    }
    // Let the fleet settle between the runs (every agent heartbeating again).
    const baseline = await restart('baseline: no admission control', { ALVEARY_AGENT_MAX_CONCURRENT_HELLOS: '100000' })
    await sleep(opts['heartbeat-ms'] * 2)
    const admitted = await restart('admission control', {})
    result.reconnect = { agents: n, ...admitted, baseline }
  }
  if (closes.size) log(`connections closed outside the restarts, by close code: ${JSON.stringify(Object.fromEntries(closes))}`)
  log(`machine: ${os.cpus().length} × ${os.cpus()[0]?.model}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, node ${process.version}, load average ${os.loadavg()[0]!.toFixed(1)}`)
  result.loadAverage = Math.round(os.loadavg()[0]! * 10) / 10
  console.log(JSON.stringify(result))
} finally {
  await cleanup()
}
