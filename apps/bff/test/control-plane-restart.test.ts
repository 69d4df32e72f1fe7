import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import pg from 'pg'
import pino from 'pino'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startBff, type StartedBff } from '../src/bff'
import { repoRoot, ZBffEnv } from '../src/config'
import { addMember, callerFor, freshDatabase, OPERATOR, waitFor, readyNodes } from './harness'

// A control-plane restart must not evict healthy workloads: the BFF (a real process) is
// killed and restarted five times with short lifecycle settings while two real agents keep
// running their instances; nothing may be rescheduled.
// Down longer than lease + grace, so a leader counting the silence it did not watch would
// evict; the lease itself outlasts the 2-3 s stalls agents see on a busy 2-core machine.
const SETTINGS = { ALVEARY_PASSWORD_HASH_COST: '14', ALVEARY_HEARTBEAT_MS: '1000', ALVEARY_NODE_LEASE_MS: '5000', ALVEARY_EVICTION_GRACE_MS: '1500', ALVEARY_NODE_STARTUP_GRACE_MS: '15000' }
const DOWN_MS = 7_000
let db: Awaited<ReturnType<typeof freshDatabase>>
let dir: string
let port: number
let bff: ChildProcess | null = null
let reader: StartedBff
const agents: ChildProcess[] = []

function startChildBff() {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'apps/bff/src/main.ts')], {
    cwd: repoRoot,
    env: { ...process.env, DATABASE_URL: db.url, BFF_PORT: String(port), BFF_HOST: '127.0.0.1', ALVEARY_OPERATOR_EMAIL: OPERATOR.email, ALVEARY_OPERATOR_PASSWORD: OPERATOR.password, LOG_LEVEL: 'error', ...SETTINGS },
    stdio: ['ignore', 'ignore', 'inherit'],
  })
  bff = child
  return waitFor('the BFF answers', () => fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false), 60_000, 100)
}
const kill = (c: ChildProcess | null, signal: NodeJS.Signals = 'SIGKILL') =>
  new Promise<void>((r) => (!c || c.exitCode !== null || c.signalCode !== null ? r() : (c.once('exit', () => r()), c.kill(signal))))

async function query<T extends pg.QueryResultRow>(sql: string) {
  const c = new pg.Client({ connectionString: db.url }).on('error', () => {})
  await c.connect()
  try {
    return (await c.query<T>(sql)).rows
  } finally {
    await c.end()
  }
}

beforeAll(async () => {
  db = await freshDatabase()
  dir = await mkdtemp(path.join(os.tmpdir(), 'alveary-restart-'))
  port = 20_000 + Math.floor(Math.random() * 10_000)
  // A second BFF on the same database, without control loops: sets up and reads, never leads.
  reader = await startBff(
    ZBffEnv.parse({ DATABASE_URL: db.url, BFF_PORT: '0', BFF_HOST: '127.0.0.1', ALVEARY_OPERATOR_EMAIL: OPERATOR.email, ALVEARY_OPERATOR_PASSWORD: OPERATOR.password, ...SETTINGS }),
    { log: pino({ level: 'silent' }), runControlLoops: false },
  )
  await startChildBff()
}, 90_000)
afterAll(async () => {
  // SIGTERM: the agents stop their instances (--stop-on-exit) before exiting.
  await Promise.all(agents.map((a) => kill(a, 'SIGTERM')))
  await kill(bff)
  await reader?.stop()
  await db?.drop()
  if (dir) await rm(dir, { recursive: true, force: true })
})

it('restarting the BFF five times reschedules nothing', async () => {
  const op = await callerFor(reader, OPERATOR.email, OPERATOR.password)
  const { token } = await op.joinTokens.create({ description: 'restart', ttlHours: 1, uses: 2 })
  const tenantId = (await op.tenants.create({ slug: 'steady', name: 'Steady' })).id
  await addMember(reader, op, tenantId, { email: 'dev@steady.test', name: 'Dev', password: 'dev-password', role: 'owner' })
  const dev = await callerFor(reader, 'dev@steady.test', 'dev-password')
  // Host ports of its own (the lifecycle and overlay tests use 30000-31999), below the ephemeral range.
  const base = 32_000 + Math.floor(Math.random() * 3) * 200
  for (const [i, name] of ['steady-a', 'steady-b'].entries()) {
    const child = spawn(
      process.execPath,
      [
        path.join(repoRoot, 'packages/agents/bin/alveary-agent.mjs'),
        ...['--server', `ws://127.0.0.1:${port}`, '--join-token', token, '--name', name, '--data-dir', path.join(dir, name)],
        ...['--port-range', `${base + i * 100}-${base + i * 100 + 99}`, '--docker-host', 'none', '--network', 'host', '--stop-on-exit', '--log-level', 'warn'],
      ],
      { cwd: repoRoot, stdio: ['ignore', 'ignore', 'inherit'] },
    )
    agents.push(child)
  }
  await readyNodes(op, 2)
  const appId = (await dev.apps.create({ tenantId, name: 'steady', replicas: 4, spec: { command: 'node', args: ['examples/hello/server.js'], cpuMillis: 50, memoryMb: 32 } })).id
  const placement = async () => (await dev.apps.get({ tenantId, appId })).instances.map((i) => `${i.id}@${i.node?.name ?? '-'}:${i.state}:${i.restarts}`).sort()
  const allRunning = async () => {
    const p = await placement()
    return p.length === 4 && p.every((x) => x.includes(':running:')) ? p : null
  }
  const before = await waitFor('4 replicas running on the two nodes', allRunning, 60_000, 200)
  expect(new Set(before.map((x) => x.split('@')[1]!.split(':')[0])).size).toBe(2)

  for (let round = 1; round <= 5; round++) {
    await kill(bff)
    await new Promise((r) => setTimeout(r, DOWN_MS))
    await startChildBff()
    await waitFor(`both nodes back after restart ${round}`, async () => (await op.nodes.list()).filter((n) => n.name.startsWith('steady-') && n.connected && n.state === 'ready').length === 2, 60_000, 100)
    // Watch for longer than lease + grace: nothing moves, nothing restarts.
    for (const until = Date.now() + 3_000; Date.now() < until; await new Promise((r) => setTimeout(r, 200))) expect(await placement()).toEqual(before)
  }
  expect(await query(`SELECT type, message FROM hot."Event" WHERE type = 'node.evicted'`)).toEqual([])
}, 240_000)
