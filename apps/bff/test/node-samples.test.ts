import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { callerFor, OPERATOR, startTestBff, waitFor, type TestBff } from './harness'
import { joinSim, type SimAgent } from './sim-agent'

// Node usage from heartbeats is written in groups; the lease answer never waits for it.
let bff: TestBff
const sims: SimAgent[] = []

beforeAll(async () => {
  bff = await startTestBff({ ALVEARY_HEARTBEAT_MS: '10000' })
})
afterAll(async () => {
  sims.forEach((s) => s.close())
  await bff?.stop()
  await bff?.dropDatabase()
})

describe('node usage samples', () => {
  it('records a sample per node from heartbeats that arrive together, and answers each heartbeat with a lease', async () => {
    const op = await callerFor(bff, OPERATOR.email, OPERATOR.password)
    const { token } = await op.joinTokens.create({ description: 'samples', ttlHours: 1, uses: 5 })
    sims.push(...(await Promise.all([0, 1, 2, 3, 4].map((i) => joinSim(bff.url, { joinToken: token }, `sampled-${i}`)))))
    sims.forEach((s, i) => s.heartbeat(100 * (i + 1), 10 * (i + 1)))
    for (const s of sims) await waitFor('lease', async () => s.messages.some((m) => m.type === 'lease'))
    const series = await waitFor('a sample of every node', async () => {
      const got = await op.metrics.nodes({ nodeIds: sims.map((s) => s.nodeId!), minutes: 5 })
      return got.length === 5 && got.every((g) => g.points.length === 1) ? got : null
    })
    for (const [i, s] of sims.entries()) expect(series.find((g) => g.subjectId === s.nodeId)!.points[0]).toMatchObject({ cpuMillis: 100 * (i + 1), memoryMb: 10 * (i + 1) })
  })
})
