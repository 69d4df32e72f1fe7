import { PROTOCOL_VERSION } from '@alveary/core/protocol'
import { randomUUID } from 'node:crypto'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { appRouter } from '../src/router'
import { addMember, callerFor, callerWithActor, OPERATOR, startTestBff, tenantWithOwner, type Caller, type TestBff } from './harness'
import { trpcPost } from './http'

const sample = { driver: 'process' as const, command: 'node', args: ['examples/hello/server.js'], cpuMillis: 100, memoryMb: 64 }
const settle = (p: Promise<unknown>) => p.then(() => 'ok', () => 'failed')

let bff: TestBff
let op: Caller
let alice: Caller
let bob: Caller
let tA: string
let tB: string

beforeAll(async () => {
  bff = await startTestBff()
  op = await callerFor(bff, OPERATOR.email, OPERATOR.password)
  ;({ tenantId: tA, caller: alice } = await tenantWithOwner(bff, op, { slug: 'acme', name: 'Acme' }, { email: 'alice@acme.test', name: 'Alice', password: 'alice-password' }))
  ;({ tenantId: tB, caller: bob } = await tenantWithOwner(bff, op, { slug: 'globex', name: 'Globex' }, { email: 'bob@globex.test', name: 'Bob', password: 'bob-password' }))
})
afterAll(async () => {
  await bff?.stop()
  await bff?.dropDatabase()
})

const rowsOf = async (caller: Caller, q: Parameters<Caller['audit']['list']>[0]) => (await caller.audit.list(q)).records

describe('audit trail', () => {
  it('records each mutation with actor, credential, target, before → after and result, failures included', async () => {
    const app = await alice.apps.create({ tenantId: tA, name: 'web', replicas: 1, spec: sample })
    await alice.apps.scale({ tenantId: tA, appId: app.id, replicas: 2 })
    expect(await settle(alice.apps.scale({ tenantId: tA, appId: randomUUID(), replicas: 3 }))).toBe('failed')
    expect(await settle(alice.apps.create({ tenantId: tA, name: 'web', replicas: 1, spec: sample }))).toBe('failed')

    const rows = await rowsOf(alice, { tenantId: tA, action: 'apps.', limit: 10 })
    expect(rows.map((r) => [r.action, r.result])).toEqual([
      ['apps.create', 'CONFLICT'],
      ['apps.scale', 'NOT_FOUND'],
      ['apps.scale', 'ok'],
      ['apps.create', 'ok'],
    ])
    const scaled = rows[2]!
    expect(scaled).toMatchObject({ actorKind: 'user', actorEmail: 'alice@acme.test', door: 'trpc', sourceIp: '127.0.0.1', target: `app/${app.id}`, summary: 'Scaled from 1 to 2', error: null })
    expect(scaled.credential).toMatch(/^session:/)
    expect(rows[1]!.error).toBeTruthy()
  })

  it('keeps secrets out and records failed sign-ins', async () => {
    const anon = callerWithActor(bff, null)
    expect(await settle(anon.auth.login({ email: 'alice@acme.test', password: 'wrong-password' }))).toBe('failed')
    const { token } = await alice.tokens.create({ tenantId: tA, name: 'ci', role: 'developer', ttlDays: 1 })
    const all = await rowsOf(op, { limit: 20 })
    const login = all.find((r) => r.action === 'auth.login')!
    expect(login).toMatchObject({ actorKind: 'anonymous', actorEmail: 'alice@acme.test', result: 'UNAUTHORIZED', tenantId: null })
    expect(login.request['password']).toBe('[redacted]')
    expect(JSON.stringify(all)).not.toContain('wrong-password')
    expect(JSON.stringify(all)).not.toContain(token)
  })

  it('records every mutation of the router, even refused input', async () => {
    const mutations = Object.entries(appRouter._def.procedures)
      .filter(([, p]) => (p as unknown as { _def: { type: string } })._def.type === 'mutation')
      .map(([path]) => path)
    const before = (await rowsOf(op, { limit: 1 }))[0]!.id
    for (const path of mutations) {
      const fn = path.split('.').reduce<any>((o, k) => o[k], op) // eslint-disable-line @typescript-eslint/no-explicit-any
      await settle(fn({ tenantId: randomUUID() }))
    }
    const rows = (await rowsOf(op, { limit: 500 })).filter((r) => BigInt(r.id) > BigInt(before))
    expect(new Set(rows.map((r) => r.action))).toEqual(new Set(mutations))
  })

  it('tenants see only their own rows; operators see all; a call into a foreign tenant lands in no tenant', async () => {
    expect(await settle(bob.apps.scale({ tenantId: tA, appId: randomUUID(), replicas: 1 }))).toBe('failed')
    const aliceRows = await rowsOf(alice, { tenantId: tA, limit: 500 })
    expect(aliceRows.every((r) => r.tenantId === tA)).toBe(true)
    expect(aliceRows.some((r) => r.actorEmail === 'bob@globex.test')).toBe(false)
    expect(await settle(alice.audit.list({ tenantId: tB, limit: 10 }))).toBe('failed')
    expect(await settle(alice.audit.list({ limit: 10 }))).toBe('failed')
    const probe = (await rowsOf(op, { actor: 'bob@', result: 'failed', limit: 10 }))[0]!
    expect(probe).toMatchObject({ action: 'apps.scale', tenantId: null, result: 'NOT_FOUND' })
    // A developer does not read the trail.
    await addMember(bff, alice, tA, { email: 'dev@acme.test', name: 'Dev', password: 'dev-password', role: 'developer' })
    const dev = await callerFor(bff, 'dev@acme.test', 'dev-password')
    expect(await settle(dev.audit.list({ tenantId: tA, limit: 10 }))).toBe('failed')
  })

  it('records API calls with the token and the client address, and exports JSON lines', async () => {
    const { token } = await alice.tokens.create({ tenantId: tA, name: 'script', role: 'owner', ttlDays: 1 })
    const res = await trpcPost(bff.url, 'apps.create', { tenantId: tA, name: 'api-app', replicas: 1, spec: sample }, { authorization: `Bearer ${token}`, 'user-agent': 'audit-test/1' })
    expect(res.status).toBe(200)
    const row = (await rowsOf(alice, { tenantId: tA, action: 'apps.create', limit: 1 }))[0]!
    expect(row).toMatchObject({ actorKind: 'token', userAgent: 'audit-test/1', result: 'ok', summary: 'App api-app deployed with 1 replica' })
    expect(row.credential).toMatch(/^token:/)
    expect(row.sourceIp).toMatch(/127\.0\.0\.1/)

    const exp = await fetch(`${bff.url}/api/v1/audit/export?tenantId=${tA}&action=apps.`, { headers: { authorization: `Bearer ${token}` } })
    expect(exp.status).toBe(200)
    expect(exp.headers.get('content-type')).toBe('application/x-ndjson')
    const lines = (await exp.text()).trim().split('\n').map((l) => JSON.parse(l) as { action: string; tenantId: string })
    expect(lines.length).toBeGreaterThanOrEqual(5)
    expect(lines.every((l) => l.action.startsWith('apps.') && l.tenantId === tA)).toBe(true)
    const foreign = await fetch(`${bff.url}/api/v1/audit/export?tenantId=${tB}`, { headers: { authorization: `Bearer ${token}` } })
    expect(foreign.status).toBe(404)
    expect((await fetch(`${bff.url}/api/v1/audit/export`)).status).toBe(401)
    expect((await fetch(`${bff.url}/api/v1/audit/export?result=maybe`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(422)
  })

  it('records agent joins, refused ones included', async () => {
    const { token } = await op.joinTokens.create({ description: 'audit', ttlHours: 1, uses: 1 })
    const hello = (name: string) =>
      bff.core.agents.hello(
        {
          type: 'hello',
          protocolVersion: PROTOCOL_VERSION,
          auth: { joinToken: token },
          node: { name, address: '198.18.0.9', labels: {}, cpuMillis: 1000, memoryMb: 1024, drivers: ['process'], agentVersion: 'test', capabilities: { lb: null, network: 'host' } },
        },
        randomUUID(),
        '198.18.0.9',
      )
    expect((await hello('audit-node')).ok).toBe(true)
    expect(await settle(hello('audit-node-2'))).toBe('failed') // the token's one use is gone
    const rows = await rowsOf(op, { action: 'node.join', limit: 10 })
    expect(rows.map((r) => [r.target, r.result, r.door, r.sourceIp])).toEqual([
      ['node/audit-node-2', 'UNAUTHORIZED', 'agent', '198.18.0.9'],
      ['node/audit-node', 'ok', 'agent', '198.18.0.9'],
    ])
    expect(rows[0]!.credential).toMatch(/^jointoken:/)
  })

  it('is append-only in the database', async () => {
    const client = new pg.Client({ connectionString: bff.databaseUrl })
    await client.connect()
    try {
      await expect(client.query(`UPDATE "AuditRecord" SET result = 'ok'`)).rejects.toThrow(/append-only/)
      await expect(client.query(`DELETE FROM "AuditRecord"`)).rejects.toThrow(/append-only/)
      await expect(client.query(`TRUNCATE "AuditRecord"`)).rejects.toThrow(/append-only/)
    } finally {
      await client.end()
    }
  })
})
