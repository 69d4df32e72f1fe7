import pg from 'pg'
import { TRPCError } from '@trpc/server'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { addMember, callerFor, callerWithActor, OPERATOR, startTestBff, type Caller, type TestBff } from './harness'
import { sample } from './hostile'
import { routerProcedures } from './router-schemas'

/**
 * Membership and credentials (issue 7 §3): invitations instead of silent adds, the rule
 * for operators in tenants, and API tokens that cannot create credentials of any kind.
 */
let bff: TestBff
let db: pg.Pool
let op: Caller
let alice: Caller // owner of acme
let tA: string
let tEmpty: string
const anon = () => callerWithActor(bff, null)
const code = async (p: Promise<unknown>) => {
  try {
    await p
    return 'OK'
  } catch (err) {
    return err instanceof TRPCError ? err.code : `not a TRPCError: ${(err as Error).message}`
  }
}
const events = async (tenantId: string) =>
  (await db.query<{ type: string; message: string; actorId: string; data: { actor?: { operator?: boolean } } }>(`SELECT type, message, "actorId", data FROM hot."Event" WHERE "tenantId" = $1 ORDER BY id`, [tenantId])).rows

beforeAll(async () => {
  bff = await startTestBff()
  db = new pg.Pool({ connectionString: bff.databaseUrl }).on('error', () => {})
  op = await callerFor(bff, OPERATOR.email, OPERATOR.password)
  tA = (await op.tenants.create({ slug: 'acme', name: 'Acme' })).id
  tEmpty = (await op.tenants.create({ slug: 'empty', name: 'Empty' })).id
  await addMember(bff, op, tA, { email: 'alice@acme.test', name: 'Alice', password: 'alice-password', role: 'owner' })
  alice = await callerFor(bff, 'alice@acme.test', 'alice-password')
  // Bob has an account (owner of his own tenant), Nina has none.
  const tB = (await op.tenants.create({ slug: 'bobs', name: 'Bobs' })).id
  await addMember(bff, op, tB, { email: 'bob@bobs.test', name: 'Bob', password: 'bob-password', role: 'owner' })
})
afterAll(async () => {
  await db?.end()
  await bff?.stop()
  await bff?.dropDatabase()
})

describe('invitations', () => {
  it('answer the same for an e-mail with an account and one without, and add nobody', async () => {
    const shape = (r: unknown) => JSON.stringify(r, (k, v) => (['id', 'token', 'email', 'expiresAt', 'createdAt'].includes(k) ? typeof v : v))
    const existing = await alice.invitations.create({ tenantId: tA, email: 'bob@bobs.test', role: 'developer' })
    const unknown = await alice.invitations.create({ tenantId: tA, email: 'nina@new.test', role: 'developer' })
    expect(shape(existing)).toBe(shape(unknown))
    expect(Object.keys(existing.invitation).sort()).toEqual(['createdAt', 'email', 'expiresAt', 'id', 'invitedBy', 'role'])
    // Nobody joined: Bob has not said yes.
    expect((await alice.members.list({ tenantId: tA })).map((m) => m.email)).toEqual(['alice@acme.test'])
    expect((await alice.invitations.list({ tenantId: tA })).map((i) => i.email).sort()).toEqual(['bob@bobs.test', 'nina@new.test'])
  })

  it('let an existing user see, accept or decline what was sent to them', async () => {
    const bob = await callerFor(bff, 'bob@bobs.test', 'bob-password')
    const received = await bob.invitations.received()
    expect(received).toEqual([expect.objectContaining({ email: 'bob@bobs.test', role: 'developer', tenant: { slug: 'acme', name: 'Acme' }, invitedBy: 'Alice' })])
    // Someone else cannot accept Bob's invitation by its id.
    const carolToken = (await alice.invitations.create({ tenantId: tA, email: 'carol@acme.test', role: 'viewer' })).token
    await anon().invitations.signUp({ token: carolToken, name: 'Carol', password: 'carol-password' })
    const carol = await callerFor(bff, 'carol@acme.test', 'carol-password')
    expect(await code(carol.invitations.accept({ id: received[0]!.id }))).toBe('NOT_FOUND')
    expect(await bob.invitations.accept({ id: received[0]!.id })).toEqual({ tenantSlug: 'acme' })
    expect((await alice.members.list({ tenantId: tA })).find((m) => m.email === 'bob@bobs.test')?.role).toBe('developer')
    expect(await code(bob.invitations.accept({ id: received[0]!.id }))).toBe('NOT_FOUND') // used
    // Declining leaves no trace but the audit event.
    const again = await alice.invitations.create({ tenantId: tA, email: 'dora@acme.test', role: 'viewer' })
    await anon().invitations.signUp({ token: (await op.invitations.create({ tenantId: tEmpty, email: 'dora@acme.test', role: 'owner' })).token, name: 'Dora', password: 'dora-password' })
    const dora = await callerFor(bff, 'dora@acme.test', 'dora-password')
    await dora.invitations.decline({ id: again.invitation.id })
    expect((await alice.members.list({ tenantId: tA })).some((m) => m.email === 'dora@acme.test')).toBe(false)
    const types = (await events(tA)).map((e) => e.type)
    expect(types).toEqual(expect.arrayContaining(['invitation.created', 'invitation.accepted', 'invitation.declined']))
  })

  it('create the account of a new person through the link, once, and sign it in', async () => {
    const { token } = await alice.invitations.create({ tenantId: tA, email: 'erin@new.test', role: 'viewer' })
    expect(await anon().invitations.preview({ token })).toMatchObject({ email: 'erin@new.test', role: 'viewer', tenant: { slug: 'acme', name: 'Acme' } })
    const res = await fetch(`${bff.url}/trpc/invitations.signUp`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ json: { token, name: 'Erin', password: 'erin-password' } }) })
    expect(res.status).toBe(200)
    const cookie = res.headers.get('set-cookie')!.split(';')[0]!
    const me = (await fetch(`${bff.url}/trpc/auth.me`, { headers: { cookie } }).then((r) => r.json())) as { result: { data: { json: { tenants: unknown[] } } } }
    expect(me.result.data.json.tenants).toEqual([expect.objectContaining({ slug: 'acme', role: 'viewer' })])
    // The link is spent.
    expect(await code(anon().invitations.signUp({ token, name: 'Erin 2', password: 'erin-password' }))).toBe('NOT_FOUND')
    expect(await code(anon().invitations.preview({ token }))).toBe('NOT_FOUND')
  })

  it('send an e-mail that has an account to sign in instead; a new invitation replaces the old link; expired links are dead', async () => {
    const { token } = await alice.invitations.create({ tenantId: tA, email: 'alice@acme.test', role: 'viewer' }).catch(() => ({ token: '' }))
    expect(token).toBe('') // already a member: CONFLICT
    const ownerless = (await op.tenants.create({ slug: 'ownerless', name: 'Ownerless' })).id
    const bobAgain = await op.invitations.create({ tenantId: ownerless, email: 'bob@bobs.test', role: 'owner' })
    expect(await code(anon().invitations.signUp({ token: bobAgain.token, name: 'Mallory', password: 'mallory-password' }))).toBe('CONFLICT')
    const first = await alice.invitations.create({ tenantId: tA, email: 'fred@new.test', role: 'viewer' })
    const second = await alice.invitations.create({ tenantId: tA, email: 'fred@new.test', role: 'developer' })
    expect(await code(anon().invitations.preview({ token: first.token }))).toBe('NOT_FOUND')
    expect((await anon().invitations.preview({ token: second.token })).role).toBe('developer')
    await db.query(`UPDATE "Invitation" SET "expiresAt" = now() - interval '1 minute' WHERE id = $1`, [second.invitation.id])
    expect(await code(anon().invitations.signUp({ token: second.token, name: 'Fred', password: 'fred-password' }))).toBe('NOT_FOUND')
  })

  it('follow the roles: only owners invite owners, developers and viewers invite nobody', async () => {
    await addMember(bff, alice, tA, { email: 'adam@acme.test', name: 'Adam', password: 'adam-password', role: 'admin' })
    const adam = await callerFor(bff, 'adam@acme.test', 'adam-password')
    expect(await code(adam.invitations.create({ tenantId: tA, email: 'x@acme.test', role: 'owner' }))).toBe('FORBIDDEN')
    expect(await code(adam.invitations.create({ tenantId: tA, email: 'x@acme.test', role: 'admin' }))).toBe('OK')
    const bob = await callerFor(bff, 'bob@bobs.test', 'bob-password') // developer in acme
    expect(await code(bob.invitations.create({ tenantId: tA, email: 'y@acme.test', role: 'viewer' }))).toBe('FORBIDDEN')
    expect(await code(bob.invitations.list({ tenantId: tA }))).toBe('FORBIDDEN')
  })
})

describe('operators in tenants', () => {
  it('cannot make themselves members, change members, or deploy in a tenant they were not invited to', async () => {
    const sample = { command: 'node', cpuMillis: 10, memoryMb: 16 }
    expect(await code(op.invitations.create({ tenantId: tA, email: OPERATOR.email, role: 'owner' }))).toBe('FORBIDDEN') // acme has an owner
    expect(await code(op.invitations.create({ tenantId: tA, email: 'sock@puppet.test', role: 'owner' }))).toBe('FORBIDDEN')
    const aliceId = (await alice.members.list({ tenantId: tA })).find((m) => m.email === 'alice@acme.test')!.userId
    expect(await code(op.members.setRole({ tenantId: tA, userId: aliceId, role: 'viewer' }))).toBe('FORBIDDEN')
    expect(await code(op.members.remove({ tenantId: tA, userId: aliceId }))).toBe('FORBIDDEN')
    expect(await code(op.apps.create({ tenantId: tA, name: 'ops', replicas: 1, spec: sample }))).toBe('FORBIDDEN')
    // An ownerless tenant: the operator invites its first owner, and only an owner…
    const t = (await op.tenants.create({ slug: 'fresh', name: 'Fresh' })).id
    expect(await code(op.invitations.create({ tenantId: t, email: 'dev@fresh.test', role: 'developer' }))).toBe('FORBIDDEN')
    // …and cannot be that owner: an operator account cannot accept an operator's invitation.
    const self = await op.invitations.create({ tenantId: t, email: OPERATOR.email, role: 'owner' })
    expect(await code(op.invitations.accept({ id: self.invitation.id }))).toBe('FORBIDDEN')
    expect((await op.tenants.get({ tenantId: t })).role).toBe('viewer')
    expect(await code(op.apps.create({ tenantId: t, name: 'ops', replicas: 1, spec: sample }))).toBe('FORBIDDEN')
    // Every one of those operator actions in the tenant is in its audit trail, marked.
    const trail = await events(t)
    expect(trail.map((e) => e.type)).toEqual(['tenant.created', 'invitation.created'])
    for (const e of trail) {
      expect(e.data.actor?.operator).toBe(true)
      expect(e.message).toMatch(/^Operator operator@test\.local: /)
    }
  })

  it("act as members once the tenant's owner invited them, and stay audited as operators", async () => {
    const { invitation } = await alice.invitations.create({ tenantId: tA, email: OPERATOR.email, role: 'developer' })
    const me = await callerFor(bff, OPERATOR.email, OPERATOR.password)
    await me.invitations.accept({ id: invitation.id })
    const op2 = await callerFor(bff, OPERATOR.email, OPERATOR.password)
    const app = await op2.apps.create({ tenantId: tA, name: 'by-operator', replicas: 0, spec: { command: 'node', cpuMillis: 10, memoryMb: 16 } })
    expect(app.name).toBe('by-operator')
    const created = (await events(tA)).find((e) => e.type === 'app.created' && e.message.includes('by-operator'))!
    expect(created.data.actor?.operator).toBe(true)
    // As a developer it still cannot touch members.
    expect(await code(op2.invitations.create({ tenantId: tA, email: 'z@acme.test', role: 'viewer' }))).toBe('FORBIDDEN')
  })
})

describe('API tokens', () => {
  it('cannot create credentials of any kind, through any mutation', async () => {
    const { token } = await alice.tokens.create({ tenantId: tA, name: 'owner-token', role: 'owner', ttlDays: 1 })
    const bearer = { authorization: `Bearer ${token}`, 'content-type': 'application/json' }
    const post = (path: string, input: unknown) => fetch(`${bff.url}/trpc/${path}`, { method: 'POST', headers: bearer, body: JSON.stringify({ json: input }) })
    // The direct ones: each refused with 403.
    expect((await post('tokens.create', { tenantId: tA, name: 'child', role: 'viewer', ttlDays: 1 })).status).toBe(403)
    expect((await post('invitations.create', { tenantId: tA, email: 'minted@evil.test', role: 'owner' })).status).toBe(403)
    expect((await post('joinTokens.create', { description: 'minted' })).status).toBe(403)
    const pending = (await alice.invitations.list({ tenantId: tA }))[0]!
    expect((await post('invitations.accept', { id: pending.id })).status).toBe(403)
    // The sweep: every mutation of the router, with a valid-looking input, creates no credential.
    const createdSince = async (since: Date) =>
      Number(
        (
          await db.query<{ n: string }>(
            `SELECT (SELECT count(*) FROM "User" WHERE "createdAt" >= $1) + (SELECT count(*) FROM "Session" WHERE "createdAt" >= $1) + (SELECT count(*) FROM "ApiToken" WHERE "createdAt" >= $1)
                  + (SELECT count(*) FROM "JoinToken" WHERE "createdAt" >= $1) + (SELECT count(*) FROM "Invitation" WHERE "createdAt" >= $1) AS n`,
            [since],
          )
        ).rows[0]!.n,
      )
    const start = (await db.query<{ now: Date }>('SELECT now()::timestamp(3) AS now')).rows[0]!.now
    const ids = { tenantId: tA, id: pending.id }
    for (const p of routerProcedures().filter((x) => x.type === 'mutation' && x.path !== 'auth.logout')) {
      const res = await post(p.path, p.input ? sample(p.input, '', ids) : undefined)
      expect.soft(res.status, p.path).toBeLessThan(500)
    }
    expect(await createdSince(start)).toBe(0)
  })
})
