import { randomUUID } from 'node:crypto'
import { CloseCode, PROTOCOL_VERSION, type TServerMessage } from '@alveary/core/protocol'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { addMember, callerFor, OPERATOR, startTestBff, waitFor, type TestBff } from './harness'

let bff: TestBff
let joinToken: string

const node = (name: string) => ({ name, address: '127.0.0.1', labels: {}, cpuMillis: 2000, memoryMb: 2048, drivers: ['process'], agentVersion: 'test' })
// One agent run per node name: reconnecting with it is the same agent coming back.
const runIds = new Map<string, string>()
const runIdOf = (name: string) => runIds.get(name) ?? (runIds.set(name, randomUUID()), runIds.get(name)!)
const hello = (auth: object, name = 'n1', protocolVersion = PROTOCOL_VERSION) => JSON.stringify({ type: 'hello', protocolVersion, auth, node: node(name), runId: runIdOf(name) })

/** Opens a socket, sends frames, collects server frames until it closes or `until` matches. */
function session(frames: (string | Buffer)[], until?: (m: TServerMessage[]) => boolean) {
  return new Promise<{ code: number; reason: string; messages: TServerMessage[]; ws: WebSocket }>((resolve, reject) => {
    const ws = new WebSocket(`${bff.url.replace('http', 'ws')}/agent`)
    const messages: TServerMessage[] = []
    ws.on('open', () => frames.forEach((f) => ws.send(f)))
    ws.on('message', (d) => {
      messages.push(JSON.parse(d.toString()))
      if (until?.(messages)) resolve({ code: 0, reason: '', messages, ws })
    })
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString(), messages, ws }))
    ws.on('error', reject)
  })
}

const nodeCount = async () => (await bff.core.nodes.list(await bff.core.auth.operatorActor(OPERATOR.email))).length
const healthy = async () => (await fetch(`${bff.url}/healthz`)).ok

beforeAll(async () => {
  // A long heartbeat interval: these hand-driven agents never beat, and must not be dropped as silent.
  bff = await startTestBff({ ALVEARY_HEARTBEAT_MS: '10000' })
  const op = await callerFor(bff, OPERATOR.email, OPERATOR.password)
  joinToken = (await op.joinTokens.create({ description: 'test', ttlHours: 1, uses: 50 })).token
})
afterAll(async () => {
  await bff?.stop()
  await bff?.dropDatabase()
})

describe('agent gateway: bad input', () => {
  it('closes on a frame that is not JSON', async () => {
    const r = await session(['{nope'])
    expect(r.code).toBe(CloseCode.badFrame)
    expect(r.reason).toMatch(/not JSON/)
    expect(await healthy()).toBe(true)
  })

  it('closes when the first frame is not hello', async () => {
    const r = await session([JSON.stringify({ type: 'heartbeat', cpuUsedMillis: 0, memoryUsedMb: 0, appliedGeneration: 0 })])
    expect(r.code).toBe(CloseCode.badFrame)
    expect(r.reason).toMatch(/first frame must be hello/)
  })

  it('closes on a schema violation, naming the field', async () => {
    const r = await session([JSON.stringify({ type: 'hello', protocolVersion: 1, auth: { joinToken }, node: { ...node('n1'), cpuMillis: -5 } })])
    expect(r.code).toBe(CloseCode.badFrame)
    expect(r.reason).toMatch(/node.cpuMillis/)
  })

  it('closes on binary and oversized frames', async () => {
    expect((await session([Buffer.from([1, 2, 3])])).code).toBe(CloseCode.badFrame)
    expect((await session(['x'.repeat(2 * 1024 * 1024)])).code).toBe(1009)
    expect(await healthy()).toBe(true)
  })

  it('refuses a bad join token, a wrong protocol version and a wrong credential, creating nothing', async () => {
    const before = await nodeCount()
    const r1 = await session([hello({ joinToken: 'jt_definitely-not-valid' })])
    expect(r1.code).toBe(CloseCode.unauthorized)
    expect(r1.reason).toMatch(/join token/)
    expect((await session([hello({ joinToken }, 'n1', 99)])).code).toBe(CloseCode.versionMismatch)
    expect((await session([hello({ nodeId: '00000000-0000-4000-8000-000000000000', credential: 'nc_wrong-credential' })])).code).toBe(CloseCode.unauthorized)
    expect(await nodeCount()).toBe(before)
  })
})

describe('agent gateway: join and credentials', () => {
  it('joins with a token, then reconnects with the issued credential', async () => {
    const first = await session([hello({ joinToken }, 'joiner')], (m) => m.some((x) => x.type === 'desired'))
    const welcome = first.messages.find((m) => m.type === 'welcome')
    expect(welcome?.type === 'welcome' && welcome.credential).toMatch(/^nc_/)
    first.ws.close()
    if (welcome?.type !== 'welcome' || !welcome.credential) throw new Error('no credential')

    const again = await session([hello({ nodeId: welcome.nodeId, credential: welcome.credential }, 'joiner')], (m) => m.some((x) => x.type === 'desired'))
    const w2 = again.messages.find((m) => m.type === 'welcome')
    expect(w2).toMatchObject({ type: 'welcome', nodeId: welcome.nodeId })
    expect(w2 && 'credential' in w2 ? w2.credential : undefined).toBeUndefined()
    again.ws.close()
    // A second hello on an open connection is refused.
    const dup = await session([hello({ nodeId: welcome.nodeId, credential: welcome.credential }, 'joiner'), hello({ nodeId: welcome.nodeId, credential: welcome.credential }, 'joiner')])
    expect(dup.code).toBe(CloseCode.badFrame)
  })

  it('welcomes hellos arriving together each on its own merits: a wrong credential or a second connection for a live node fails only itself', async () => {
    const names = Array.from({ length: 6 }, (_, i) => `together-${i}`)
    const joined = await Promise.all(names.map((n) => session([hello({ joinToken }, n)], (m) => m.some((x) => x.type === 'desired'))))
    const creds = joined.map((j) => {
      const w = j.messages.find((m) => m.type === 'welcome')
      if (w?.type !== 'welcome' || !w.credential) throw new Error('no credential')
      return { nodeId: w.nodeId, credential: w.credential }
    })
    // Node 1 stays connected; the others come back together (their same agent runs), with a stranger and a copy among them.
    joined.forEach((j, i) => i !== 1 && j.ws.close())
    const back = names.map((n, i) => (i === 1 ? null : session([hello(creds[i]!, n)], (m) => m.some((x) => x.type === 'desired'))))
    const wrong = session([hello({ nodeId: creds[0]!.nodeId, credential: 'nc_not-this-nodes-credential' }, names[0])])
    const copy = session([JSON.stringify({ type: 'hello', protocolVersion: PROTOCOL_VERSION, auth: creds[1], node: node(names[1]!), runId: randomUUID() })])
    expect((await wrong).code).toBe(CloseCode.unauthorized)
    expect((await copy).code).toBe(CloseCode.duplicate)
    for (const b of back.filter((x) => x !== null)) {
      const r = await b
      expect(r.messages.map((m) => m.type)).toEqual(['welcome', 'desired'])
      r.ws.close()
    }
    expect(joined[1]!.ws.readyState).toBe(WebSocket.OPEN)
    joined[1]!.ws.close()
  })

  it("ignores status reports about instances that are not on the reporting node", async () => {
    const op = await callerFor(bff, OPERATOR.email, OPERATOR.password)
    const t = await op.tenants.create({ slug: 'victim', name: 'Victim' })
    await addMember(bff, op, t.id, { email: 'v@victim.test', name: 'V', password: 'victim-password', role: 'owner' })
    const v = await callerFor(bff, 'v@victim.test', 'victim-password')
    // Only node "honest" gets capacity for the app; "rogue" is dedicated to another tenant.
    const honest = await session([hello({ joinToken }, 'honest')], (m) => m.some((x) => x.type === 'welcome'))
    const rogueJoin = await session([hello({ joinToken }, 'rogue')], (m) => m.some((x) => x.type === 'welcome'))
    const rogueWelcome = rogueJoin.messages.find((m) => m.type === 'welcome')!
    rogueJoin.ws.close()
    const other = await op.tenants.create({ slug: 'other', name: 'Other' })
    await op.nodes.setDedicatedTenant({ nodeId: rogueWelcome.type === 'welcome' ? rogueWelcome.nodeId : '', tenantId: other.id })
    for (const n of (await op.nodes.list()).filter((n) => n.name !== 'honest' && n.name !== 'rogue')) await op.nodes.cordon({ nodeId: n.id })

    const app = await v.apps.create({ tenantId: t.id, name: 'target', replicas: 1, spec: { command: 'node', cpuMillis: 10, memoryMb: 8 } })
    const inst = await waitFor('placement', async () => (await v.apps.get({ tenantId: t.id, appId: app.id })).instances.find((i) => i.node?.name === 'honest'))

    const rogue = await session(
      [
        hello({ nodeId: rogueWelcome.type === 'welcome' ? rogueWelcome.nodeId : '', credential: rogueWelcome.type === 'welcome' ? rogueWelcome.credential! : '' }, 'rogue'),
        JSON.stringify({ type: 'status', full: false, instances: [{ instanceId: inst.id, state: 'failed', pid: 1, restarts: 99, startedAt: null, exitCode: 1, message: 'pwned', generation: 1 }] }),
        // Frames of one connection are handled in order: once this heartbeat shows, the status was handled too.
        JSON.stringify({ type: 'heartbeat', cpuUsedMillis: 4321, memoryUsedMb: 321, appliedGeneration: 0 }),
      ],
      (m) => m.some((x) => x.type === 'desired'),
    )
    await waitFor('the rogue heartbeat', async () => (await op.nodes.list()).find((n) => n.name === 'rogue' && n.usage.cpuMillis === 4321))
    await bff.core.flush() // anything accepted from the status frame is in the store now
    const after = (await v.apps.get({ tenantId: t.id, appId: app.id })).instances.find((i) => i.id === inst.id)!
    expect(after.message).not.toBe('pwned')
    expect(after.restarts).toBe(0)
    rogue.ws.close()
    honest.ws.close()
  })
})
