import { spawn, type ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { cp, mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { CloseCode, retryHintOf } from '@alveary/core/protocol'
import pg from 'pg'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startBff, type StartedBff } from '../src/bff'
import { repoRoot, ZBffEnv } from '../src/config'
import { callerFor, OPERATOR, startTestBff, waitFor, type TestBff } from './harness'
import { helloFrame, joinSim, openSim, type SimAgent } from './sim-agent'

// A node has one live connection, across BFFs: a second agent with the same identity is
// refused (never ping-ponged); the same agent reconnecting, or a newcomer after the live
// connection went silent, takes over.
const HEARTBEAT_MS = 1000
let bff: TestBff
let op: Awaited<ReturnType<typeof callerFor>>
let joinToken: string
const sims: SimAgent[] = []
const children: ChildProcess[] = []
let dir: string
const track = (s: SimAgent) => (sims.push(s), s)

async function helloAs(base: string, auth: object, name: string, extra: object = {}) {
  const s = track(await openSim(base))
  s.send(helloFrame(auth, name, extra))
  await waitFor('welcome or close', async () => s.nodeId || s.closed)
  return s
}
const nodeNamed = async (name: string) => (await op.nodes.list()).find((n) => n.name === name)!
async function sessionOf(nodeId: string) {
  const c = new pg.Client({ connectionString: bff.databaseUrl }).on('error', () => {})
  await c.connect()
  try {
    return (await c.query<{ sessionId: string | null }>(`SELECT "sessionId" FROM hot."NodeStatus" WHERE "nodeId" = $1`, [nodeId])).rows[0]?.sessionId ?? null
  } finally {
    await c.end()
  }
}

beforeAll(async () => {
  bff = await startTestBff({ ALVEARY_HEARTBEAT_MS: String(HEARTBEAT_MS) })
  op = await callerFor(bff, OPERATOR.email, OPERATOR.password)
  joinToken = (await op.joinTokens.create({ description: 'dup', ttlHours: 1, uses: 20 })).token
  dir = await mkdtemp(path.join(os.tmpdir(), 'alveary-dup-'))
})
afterAll(async () => {
  sims.forEach((s) => s.close())
  await Promise.all(children.map((c) => c.exitCode === null && new Promise((r) => (c.once('exit', r), c.kill('SIGKILL')))))
  await bff?.stop()
  await bff?.dropDatabase()
  if (dir) await rm(dir, { recursive: true, force: true })
})

describe('a second live connection for a node', () => {
  it('is refused with a retry hint while the first is live, and changes nothing about the node', async () => {
    const live = track(await joinSim(bff.url, { joinToken }, 'twin'))
    const beat = setInterval(() => live.heartbeat(1), HEARTBEAT_MS)
    try {
      const second = await helloAs(bff.url, { nodeId: live.nodeId, credential: live.credential }, 'twin', { node: { ...helloFrame({}, 'twin').node, address: '198.18.9.9' } })
      expect(second.closed?.code).toBe(CloseCode.duplicate)
      expect(retryHintOf(second.closed!.reason)).toBeGreaterThan(0)
      expect(second.messages).toEqual([])
      expect((await nodeNamed('twin')).address).toBe('127.0.0.1')
      expect(live.closed).toBeNull()
    } finally {
      clearInterval(beat)
    }
  })

  it('is taken over at once by the same agent run reconnecting; the old connection is told it was replaced', async () => {
    const runId = randomUUID()
    const first = await helloAs(bff.url, { joinToken }, 'rerun', { runId })
    const again = await helloAs(bff.url, { nodeId: first.nodeId, credential: first.credential }, 'rerun', { runId })
    expect(again.nodeId).toBe(first.nodeId)
    expect((await first.waitClosed()).code).toBe(CloseCode.replaced)
  })

  it('goes to a newcomer once the live connection has been silent for three heartbeats', async () => {
    const quiet = track(await joinSim(bff.url, { joinToken }, 'quiet'))
    // Never heartbeats: after 3 intervals the gateway drops it and the node is free.
    const newcomer = await waitFor(
      'the newcomer accepted',
      async () => {
        const s = await helloAs(bff.url, { nodeId: quiet.nodeId, credential: quiet.credential }, 'quiet')
        return s.nodeId ? s : null
      },
      10_000,
      200,
    )
    expect(newcomer.nodeId).toBe(quiet.nodeId)
    expect(quiet.closed?.code).toBe(CloseCode.replaced)
  })

  it('is refused on another BFF too: the session lives in the shared store', async () => {
    const other: StartedBff = await startBff(
      ZBffEnv.parse({ DATABASE_URL: bff.databaseUrl, BFF_PORT: '0', BFF_HOST: '127.0.0.1', ALVEARY_OPERATOR_PASSWORD: OPERATOR.password, ALVEARY_OPERATOR_EMAIL: OPERATOR.email, ALVEARY_HEARTBEAT_MS: String(HEARTBEAT_MS) }),
      { log: pino({ level: 'silent' }), runControlLoops: false },
    )
    try {
      const live = track(await joinSim(bff.url, { joinToken }, 'spread'))
      const beat = setInterval(() => live.heartbeat(1), HEARTBEAT_MS)
      try {
        const elsewhere = await helloAs(other.url, { nodeId: live.nodeId, credential: live.credential }, 'spread')
        expect(elsewhere.closed?.code).toBe(CloseCode.duplicate)
        expect(live.closed).toBeNull()
      } finally {
        clearInterval(beat)
      }
    } finally {
      await other.stop()
    }
  })

  it('from a real agent started on a copy of another agent\'s data folder: refused and backing off, while the original keeps the node', async () => {
    const agent = (name: string, dataDir: string) => {
      const child = spawn(
        process.execPath,
        [path.join(repoRoot, 'packages/agents/bin/alveary-agent.mjs'), '--server', bff.url, '--join-token', joinToken, '--name', name, '--data-dir', dataDir, '--docker-host', 'none', '--network', 'host', '--log-level', 'info'],
        { cwd: repoRoot, stdio: ['ignore', 'ignore', 'pipe'] },
      )
      children.push(child)
      let log = ''
      child.stderr!.on('data', (d) => (log += d))
      return { child, log: () => log }
    }
    const original = agent('cloned', path.join(dir, 'a'))
    const node = await waitFor('the original joined', async () => (await op.nodes.list()).find((n) => n.name === 'cloned' && n.connected), 20_000)
    const session = await sessionOf(node.id)
    // The clone: same credential, own folder (so no lock between them), as on a cloned machine.
    await cp(path.join(dir, 'a', 'credential.json'), path.join(dir, 'b', 'credential.json'))
    const clone = agent('cloned', path.join(dir, 'b'))
    await waitFor('the clone told it is a duplicate', async () => clone.log().includes('already has a live connection'), 20_000)
    // Watch for a while: the original keeps its session (no flapping), the clone waits its turn.
    const until = Date.now() + 4_000
    while (Date.now() < until) {
      expect(await sessionOf(node.id)).toBe(session)
      await new Promise((r) => setTimeout(r, 200))
    }
    // Backing off (at least 5 s between tries), not hammering; the error is said once.
    expect((clone.log().match(/"msg":"disconnected; will reconnect"/g) ?? []).length).toBeLessThanOrEqual(2)
    expect((clone.log().match(/this one keeps waiting/g) ?? []).length).toBe(1)
    expect(original.log()).not.toContain('took over')
  }, 60_000)
})
