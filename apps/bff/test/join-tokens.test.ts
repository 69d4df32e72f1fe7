import { CloseCode } from '@alveary/core/protocol'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { addMember, callerFor, OPERATOR, startTestBff, waitFor, type TestBff } from './harness'
import { helloFrame, joinSim, openSim, type SimAgent } from './sim-agent'

// Joins never take a node over; tokens have explicit uses; re-key is the operator's way to
// give an existing node a new credential. Everything is audited.
let bff: TestBff
let op: Awaited<ReturnType<typeof callerFor>>
const sims: SimAgent[] = []
const track = (s: SimAgent) => (sims.push(s), s)

/** Sends one hello on a fresh socket; returns how the server answered. */
async function tryHello(auth: object, name: string) {
  const s = track(await openSim(bff.url))
  s.send(helloFrame(auth, name))
  await waitFor('welcome or close', async () => s.nodeId || s.closed)
  return s
}

async function events(type: string) {
  const c = new pg.Client({ connectionString: bff.databaseUrl }).on('error', () => {})
  await c.connect()
  try {
    return (await c.query<{ message: string; data: Record<string, unknown>; actorId: string | null }>(`SELECT message, data, "actorId" FROM hot."Event" WHERE type = $1 ORDER BY id`, [type])).rows
  } finally {
    await c.end()
  }
}

beforeAll(async () => {
  // A long heartbeat interval: these hand-driven agents never beat, and must not be dropped as silent.
  bff = await startTestBff({ ALVEARY_HEARTBEAT_MS: '10000' })
  op = await callerFor(bff, OPERATOR.email, OPERATOR.password)
})
afterAll(async () => {
  sims.forEach((s) => s.close())
  await bff?.stop()
  await bff?.dropDatabase()
})

describe('join tokens', () => {
  it('refuses a join under an existing node name: no welcome, no credential, no desired state, and the real node keeps working', async () => {
    const { token } = await op.joinTokens.create({ description: 'two uses', ttlHours: 1, uses: 2 })
    const victim = track(await joinSim(bff.url, { joinToken: token }, 'victim'))
    victim.close()
    const thief = await tryHello({ joinToken: token }, 'victim')
    expect(thief.closed?.code).toBe(CloseCode.nameTaken)
    expect(thief.closed?.reason).toMatch(/victim exists/)
    expect(thief.messages).toEqual([])
    // The refused join did not consume the token's second use, and the victim's credential still works.
    const back = track(await joinSim(bff.url, { nodeId: victim.nodeId, credential: victim.credential }, 'victim', { runId: victim.runId }))
    expect(back.nodeId).toBe(victim.nodeId)
    expect((await op.joinTokens.list()).find((t) => t.description === 'two uses')?.uses).toBe(1)
    expect((await events('node.join_refused')).map((e) => e.message)).toEqual([expect.stringMatching(/join as victim .* was refused/)])
  })

  it('allows exactly the uses it was created with, even to joins racing each other, and lists what is left', async () => {
    const { token, joinToken } = await op.joinTokens.create({ description: 'pair', ttlHours: 1, uses: 2 })
    expect(joinToken).toMatchObject({ uses: 0, maxUses: 2, createdBy: OPERATOR.email, rekeyNode: null })
    const racers = await Promise.all(['race-1', 'race-2', 'race-3', 'race-4', 'race-5'].map((n) => tryHello({ joinToken: token }, n)))
    expect(racers.filter((s) => s.nodeId).length).toBe(2)
    for (const s of racers.filter((s) => !s.nodeId)) {
      expect(s.closed?.code).toBe(CloseCode.unauthorized)
      expect(s.closed?.reason).toMatch(/no uses left/)
    }
    expect((await op.joinTokens.list()).find((t) => t.id === joinToken.id)).toMatchObject({ uses: 2, maxUses: 2 })
    // Default: one use.
    const single = await op.joinTokens.create({ description: 'single', ttlHours: 1 })
    expect(single.joinToken.maxUses).toBe(1)
    expect((await tryHello({ joinToken: single.token }, 'single-1')).nodeId).toBeTruthy()
    expect((await tryHello({ joinToken: single.token }, 'single-2')).closed?.code).toBe(CloseCode.unauthorized)
  })

  it('records which node joined with which token, and who created the token', async () => {
    const { token, joinToken } = await op.joinTokens.create({ description: 'audited', ttlHours: 1 })
    const s = await tryHello({ joinToken: token }, 'audited-node')
    const joined = (await events('node.joined')).find((e) => e.data.nodeId === s.nodeId)
    expect(joined?.data).toMatchObject({ tokenId: joinToken.id, tokenPrefix: joinToken.prefix })
    expect(joined?.message).toContain(`created by ${OPERATOR.email}`)
    expect((await events('jointoken.created')).some((e) => e.data.tokenId === joinToken.id && e.actorId)).toBe(true)
  })
})

describe('re-key', () => {
  it('revokes the credential at once, disconnects the agent, and lets one agent take the node over with the one-use re-key token', async () => {
    const { token } = await op.joinTokens.create({ description: 'rk', ttlHours: 1 })
    const live = track(await joinSim(bff.url, { joinToken: token }, 'rekeyed'))
    const oldCredential = { nodeId: live.nodeId, credential: live.credential }

    const rk = await op.nodes.rekey({ nodeId: live.nodeId! })
    expect(rk.joinToken).toMatchObject({ maxUses: 1, rekeyNode: { id: live.nodeId, name: 'rekeyed' } })
    expect((await live.waitClosed()).code).toBe(CloseCode.unauthorized)
    expect((await tryHello(oldCredential, 'rekeyed')).closed?.code).toBe(CloseCode.unauthorized)
    // Bound to its node: useless under another name.
    const elsewhere = await tryHello({ joinToken: rk.token }, 'other-name')
    expect(elsewhere.closed?.reason).toMatch(/for node rekeyed/)

    const taker = await tryHello({ joinToken: rk.token }, 'rekeyed')
    expect(taker.nodeId).toBe(live.nodeId)
    expect(taker.credential).toMatch(/^nc_/)
    expect(taker.credential).not.toBe(oldCredential.credential)
    expect((await tryHello({ joinToken: rk.token }, 'rekeyed')).closed?.reason).toMatch(/no uses left/)
    taker.close()
    const back = track(await joinSim(bff.url, { nodeId: taker.nodeId, credential: taker.credential }, 'rekeyed', { runId: taker.runId }))
    expect(back.nodeId).toBe(live.nodeId)

    expect((await events('node.rekeyed')).map((e) => e.actorId)).toEqual([expect.any(String)])
    expect((await events('node.rekey_completed')).length).toBe(1)
  })

  it('is for operators only', async () => {
    const t = await op.tenants.create({ slug: 'rk-tenant', name: 'RK' })
    await addMember(bff, op, t.id, { email: 'owner@rk.test', name: 'Owner', password: 'owner-password', role: 'owner' })
    const owner = await callerFor(bff, 'owner@rk.test', 'owner-password')
    const node = (await op.nodes.list())[0]!
    await expect(owner.nodes.rekey({ nodeId: node.id })).rejects.toMatchObject({ code: 'FORBIDDEN' })
  })
})
