import { CloseCode } from '@alveary/core/protocol'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { callerFor, OPERATOR, startTestBff, waitFor, type TestBff } from './harness'
import { helloFrame, joinSim, openSim, type SimAgent } from './sim-agent'

// One bad node must never hurt another: bad values, frames after a rejection, silent sockets.
const HELLO_TIMEOUT_MS = 1500
const MAX_PENDING_PER_IP = 8
let bff: TestBff
let joinToken: string
const sims: SimAgent[] = []
type Caller = Awaited<ReturnType<typeof callerFor>>
let op: Caller

const track = (s: SimAgent) => (sims.push(s), s)
const usageOf = async (nodeId: string) => (await op.nodes.list()).find((n) => n.id === nodeId)?.usage.cpuMillis

beforeAll(async () => {
  // A long heartbeat interval: these hand-driven agents beat only when a test says so.
  bff = await startTestBff({ ALVEARY_HEARTBEAT_MS: '10000', ALVEARY_AGENT_HELLO_TIMEOUT_MS: String(HELLO_TIMEOUT_MS), ALVEARY_AGENT_MAX_PENDING_PER_IP: String(MAX_PENDING_PER_IP) })
  op = await callerFor(bff, OPERATOR.email, OPERATOR.password)
  joinToken = (await op.joinTokens.create({ description: 'isolation', ttlHours: 1, uses: 100 })).token
})
afterAll(async () => {
  sims.forEach((s) => s.close())
  await bff?.stop()
  await bff?.dropDatabase()
})

describe('agent gateway: one bad node never hurts another', () => {
  it('rejects an out-of-range heartbeat from one agent; the healthy agents beating in the same batch stay connected and land', async () => {
    const healthy = await Promise.all(['ok-1', 'ok-2', 'ok-3'].map(async (n) => track(await joinSim(bff.url, { joinToken }, n))))
    const bad = track(await joinSim(bff.url, { joinToken }, 'bad-1'))
    // Same instant: without isolation these share one group commit with the bad row.
    for (let round = 0; round < 3; round++) {
      healthy.forEach((s, i) => s.heartbeat(100 + i + round * 10))
      if (round === 0) bad.heartbeat(2 ** 31)
      await new Promise((r) => setTimeout(r, 30))
    }
    const closed = await bad.waitClosed()
    expect(closed.code).toBe(CloseCode.badFrame)
    expect(closed.reason).toMatch(/cpuUsedMillis/)
    for (const [i, s] of healthy.entries()) {
      await waitFor(`heartbeat of ok-${i + 1} landed`, async () => (await usageOf(s.nodeId!)) === 120 + i)
      expect(s.closed).toBeNull()
    }
    // And after the rejection, the healthy ones keep working.
    healthy.forEach((s, i) => s.heartbeat(500 + i))
    for (const [i, s] of healthy.entries()) await waitFor('later heartbeat', async () => (await usageOf(s.nodeId!)) === 500 + i)
    expect(healthy.every((s) => s.closed === null)).toBe(true)
  })

  it('applies nothing that arrived behind a rejected frame', async () => {
    const s = track(await joinSim(bff.url, { joinToken }, 'after-close'))
    s.heartbeat(11)
    await waitFor('first heartbeat', async () => (await usageOf(s.nodeId!)) === 11)
    // A bad frame, then valid ones in the same burst: only the first may have any effect.
    s.send('{not json')
    for (let i = 0; i < 20; i++) s.heartbeat(777)
    const closed = await s.waitClosed()
    expect(closed.code).toBe(CloseCode.badFrame)
    await bff.core.flush()
    expect(await usageOf(s.nodeId!)).toBe(11)
  })

  it('closes sockets that never say hello after the hello timeout', async () => {
    const silent = track(await openSim(bff.url))
    const t0 = Date.now()
    const closed = await silent.waitClosed(HELLO_TIMEOUT_MS + 5_000)
    expect(closed.code).toBe(CloseCode.helloTimeout)
    expect(closed.reason).toMatch(/hello/)
    expect(Date.now() - t0).toBeGreaterThanOrEqual(HELLO_TIMEOUT_MS - 100)
  })

  it('caps unauthenticated connections per address; welcomed agents are not counted', async () => {
    const welcomed = track(await joinSim(bff.url, { joinToken }, 'counted-not'))
    const idle = await Promise.all(Array.from({ length: MAX_PENDING_PER_IP }, async () => track(await openSim(bff.url))))
    expect(idle.every((s) => s.closed === null)).toBe(true)
    const over = track(await openSim(bff.url))
    expect(over.refused?.status).toBe(429)
    expect(over.refused?.retryAfterMs).toBeGreaterThan(0)
    // A slot frees as soon as a pending socket says hello (or goes away).
    idle[0]!.send(helloFrame({ joinToken }, 'freed-slot'))
    await waitFor('welcome', async () => idle[0]!.nodeId)
    const next = track(await openSim(bff.url))
    expect(next.refused).toBeNull()
    expect(welcomed.closed).toBeNull()
    idle.forEach((s) => s.close())
    next.close()
  })
})
