import { randomUUID } from 'node:crypto'
import { createConnection, type Connection } from '@alveary/agents'
import { PROTOCOL_VERSION } from '@alveary/core/protocol'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { callerFor, OPERATOR, startTestBff, waitFor, type TestBff } from './harness'
import { helloFrame, openSim, simNodeInfo, type SimAgent } from './sim-agent'

// A fleet coming back after a restart is welcomed a few at a time; the rest are told when to return.
const CONCURRENT = 2
const QUEUE = 4
let bff: TestBff
let joinToken: string
const sims: SimAgent[] = []
const conns: Connection[] = []

const rejected = async (reason: string) => {
  const text = await (await fetch(`${bff.url}/metrics`)).text()
  return Number(new RegExp(`alveary_agent_rejected_total\\{reason="${reason}"\\} (\\d+)`).exec(text)?.[1] ?? 0)
}

beforeAll(async () => {
  bff = await startTestBff({ ALVEARY_HEARTBEAT_MS: '10000', ALVEARY_AGENT_MAX_CONCURRENT_HELLOS: String(CONCURRENT), ALVEARY_AGENT_HELLO_QUEUE: String(QUEUE) })
  const op = await callerFor(bff, OPERATOR.email, OPERATOR.password)
  joinToken = (await op.joinTokens.create({ description: 'admission', ttlHours: 1, uses: 200 })).token
})
afterAll(async () => {
  sims.forEach((s) => s.close())
  await Promise.all(conns.map((c) => c.close()))
  await bff?.stop()
  await bff?.dropDatabase()
})

describe('agent gateway: admission after a restart', () => {
  it('holds a place for every socket until its agent is welcomed and has its desired state; beyond that it refuses the upgrade with a time to retry', async () => {
    const held = await Promise.all(Array.from({ length: CONCURRENT + QUEUE }, () => openSim(bff.url)))
    sims.push(...held)
    expect(held.every((s) => s.closed === null)).toBe(true)
    const over = await openSim(bff.url)
    sims.push(over)
    expect(over.refused?.status).toBe(503)
    // Told when: once half the queue ahead is through at the welcome rate, never sooner than a quarter second.
    expect(over.refused?.retryAfterMs).toBeGreaterThanOrEqual(250)
    expect(await rejected('busy')).toBeGreaterThanOrEqual(1)

    // Every queued agent gets its turn: welcomed, then its desired state.
    held.forEach((s, i) => s.send(helloFrame({ joinToken }, `held-${i}`)))
    for (const s of held) await waitFor('welcome and desired state', async () => s.messages.some((m) => m.type === 'desired') || (s.closed && Promise.reject(new Error(`closed ${s.closed.code} ${s.closed.reason}`))))
    const next = await openSim(bff.url)
    sims.push(next)
    expect(next.refused).toBeNull()
    next.close()
  })

  it('an agent refused while the gate is full comes back when the server said and is welcomed', async () => {
    const held = await Promise.all(Array.from({ length: CONCURRENT + QUEUE }, () => openSim(bff.url)))
    sims.push(...held)
    let refusedAt = 0
    let hint: number | null = null
    let welcomedAt = 0
    const runId = randomUUID()
    const conn = createConnection({
      url: `${bff.url.replace('http', 'ws')}/agent`,
      logger: pino({ level: 'silent' }),
      hello: () => ({ type: 'hello', protocolVersion: PROTOCOL_VERSION, auth: { joinToken }, node: simNodeInfo('told-when'), runId }) as never,
      onMessage: (m) => {
        if (m.type === 'welcome') welcomedAt = performance.now()
      },
      onClose: (_code, _reason, hintMs) => {
        if (refusedAt) return 'reconnect'
        refusedAt = performance.now()
        hint = hintMs
        // The gate frees up at once: only the hint keeps the agent away until then.
        held.forEach((s) => s.close())
        return 'reconnect'
      },
    })
    conns.push(conn)
    conn.start()
    await waitFor('the agent welcomed after its refusal', async () => welcomedAt > 0, 30_000, 20)
    expect(hint).toBeGreaterThanOrEqual(250)
    expect(welcomedAt - refusedAt).toBeGreaterThanOrEqual(hint! - 5)
  })

  it('a crowd of agents connecting at once (the agent connection code, its retry hints) is welcomed completely, none refused for good', async () => {
    const before = await rejected('busy')
    const log = pino({ level: 'silent' })
    const crowd = Array.from({ length: 60 }, (_, i) => {
      const state = { welcomed: false, desired: false, closes: [] as number[] }
      const runId = randomUUID()
      let auth: object = { joinToken }
      const conn = createConnection({
        url: `${bff.url.replace('http', 'ws')}/agent`,
        logger: log,
        hello: () => ({ type: 'hello', protocolVersion: PROTOCOL_VERSION, auth, node: simNodeInfo(`crowd-${i}`), runId }) as never,
        onMessage: (m) => {
          if (m.type === 'welcome') {
            state.welcomed = true
            if (m.credential) auth = { nodeId: m.nodeId, credential: m.credential }
            conn.resetBackoff()
          }
          if (m.type === 'desired') state.desired = true
        },
        onClose: (code) => {
          state.closes.push(code)
          return 'reconnect'
        },
      })
      conns.push(conn)
      conn.start()
      return state
    })
    await waitFor('every agent of the crowd welcomed with its desired state', async () => crowd.every((s) => s.welcomed && s.desired), 120_000, 50)
    // Some were told to come back later (refused upgrades close as 1006), and nobody was dropped after its hello.
    expect(await rejected('busy')).toBeGreaterThan(before)
    expect(crowd.flatMap((s) => s.closes).every((c) => c === 1006)).toBe(true)
  })
})
