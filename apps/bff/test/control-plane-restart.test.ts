import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import pg from 'pg'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { repoRoot } from '../src/config'
import { callerFor, OPERATOR, readyNodes, tenantWithOwner, waitFor } from './harness'
import { killChild, startLeaderAndReader } from './leader-process'

// A control-plane restart must not evict healthy workloads: the BFF (a real process) is
// killed and restarted five times with short lifecycle settings while two real agents keep
// running their instances; nothing may be rescheduled.
// Down longer than lease + grace, so a leader counting the silence it did not watch would
// evict; the lease itself outlasts the 2-3 s stalls agents see on a busy 2-core machine.
const SETTINGS = { ALVEARY_PASSWORD_HASH_COST: '14', ALVEARY_HEARTBEAT_MS: '1000', ALVEARY_NODE_LEASE_MS: '5000', ALVEARY_EVICTION_GRACE_MS: '1500', ALVEARY_NODE_STARTUP_GRACE_MS: '15000' }
const DOWN_MS = 7_000
let system: Awaited<ReturnType<typeof startLeaderAndReader>>
let dir: string
const agents: ChildProcess[] = []

async function query<T extends pg.QueryResultRow>(sql: string) {
  const c = new pg.Client({ connectionString: system.db.url }).on('error', () => {})
  await c.connect()
  try {
    return (await c.query<T>(sql)).rows
  } finally {
    await c.end()
  }
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'alveary-restart-'))
  system = await startLeaderAndReader(SETTINGS)
}, 90_000)
afterAll(async () => {
  // SIGTERM: the agents stop their instances (--stop-on-exit) before exiting.
  await Promise.all(agents.map((a) => killChild(a, 'SIGTERM')))
  await system?.stop()
  if (dir) await rm(dir, { recursive: true, force: true })
})

it('restarting the BFF five times reschedules nothing', async () => {
  const { reader, leader } = system
  const op = await callerFor(reader, OPERATOR.email, OPERATOR.password)
  const { token } = await op.joinTokens.create({ description: 'restart', ttlHours: 1, uses: 2 })
  const { tenantId, caller: dev } = await tenantWithOwner(reader, op, { slug: 'steady', name: 'Steady' }, { email: 'dev@steady.test', name: 'Dev', password: 'dev-password' })
  // Host ports of its own (the lifecycle and overlay tests use 30000-31999), below the ephemeral range.
  const base = 32_000 + Math.floor(Math.random() * 3) * 200
  for (const [i, name] of ['steady-a', 'steady-b'].entries()) {
    const child = spawn(
      process.execPath,
      [
        path.join(repoRoot, 'packages/agents/bin/alveary-agent.mjs'),
        ...['--server', `ws://127.0.0.1:${leader.port}`, '--join-token', token, '--name', name, '--data-dir', path.join(dir, name)],
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
    await leader.kill()
    await new Promise((r) => setTimeout(r, DOWN_MS))
    await leader.start()
    await waitFor(`both nodes back after restart ${round}`, async () => (await op.nodes.list()).filter((n) => n.name.startsWith('steady-') && n.connected && n.state === 'ready').length === 2, 60_000, 100)
    // Watch for longer than lease + grace: nothing moves, nothing restarts.
    for (const until = Date.now() + 3_000; Date.now() < until; await new Promise((r) => setTimeout(r, 200))) expect(await placement()).toEqual(before)
  }
  expect(await query(`SELECT type, message FROM hot."Event" WHERE type = 'node.evicted'`)).toEqual([])
}, 240_000)
