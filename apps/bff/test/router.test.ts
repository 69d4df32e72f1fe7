import { TRPCError } from '@trpc/server'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { appRouter } from '../src/router'
import { addMember, callerFor, callerWithActor, OPERATOR, startTestBff, type TestBff } from './harness'

type Caller = Awaited<ReturnType<typeof callerFor>>
const code = async (p: Promise<unknown>) => {
  try {
    await p
    return 'OK'
  } catch (err) {
    return err instanceof TRPCError ? err.code : `not a TRPCError: ${(err as Error).message}`
  }
}
const sample = { driver: 'process' as const, command: 'node', args: ['examples/hello/server.js'], cpuMillis: 100, memoryMb: 64 }

let bff: TestBff
let op: Caller
let alice: Caller // owner of A
let bob: Caller // owner of B
let tA: string
let tB: string
let appB: string
let lbB: string
let netB: string
let bobId: string

beforeAll(async () => {
  bff = await startTestBff()
  op = await callerFor(bff, OPERATOR.email, OPERATOR.password)
  tA = (await op.tenants.create({ slug: 'acme', name: 'Acme' })).id
  tB = (await op.tenants.create({ slug: 'globex', name: 'Globex', quotas: { instances: 5 } })).id
  await addMember(bff, op, tA, { email: 'alice@acme.test', name: 'Alice', password: 'alice-password', role: 'owner' })
  bobId = (await addMember(bff, op, tB, { email: 'bob@globex.test', name: 'Bob', password: 'bob-password', role: 'owner' })).userId
  alice = await callerFor(bff, 'alice@acme.test', 'alice-password')
  bob = await callerFor(bff, 'bob@globex.test', 'bob-password')
  appB = (await bob.apps.create({ tenantId: tB, name: 'secret', replicas: 1, spec: sample })).id
  lbB = (await bob.loadBalancers.create({ tenantId: tB, name: 'front', listeners: [{ protocol: 'http', rules: [{ targets: [{ appId: appB, port: 'http' }] }] }] })).id
  netB = (await bob.networks.create({ tenantId: tB, name: 'private', cidr: '100.64.0.0/24' })).id
})
afterAll(async () => {
  await bff?.stop()
  await bff?.dropDatabase()
})

describe('tenant isolation', () => {
  it('lists only the tenants a user belongs to', async () => {
    expect((await alice.tenants.list()).map((t) => t.slug)).toEqual(['acme'])
    expect((await op.tenants.list()).map((t) => t.slug)).toEqual(['acme', 'globex'])
  })

  it("denies every tenant-scoped procedure on another tenant's data", async () => {
    const attempts: Record<string, () => Promise<unknown>> = {
      'tenants.get': () => alice.tenants.get({ tenantId: tB }),
      'tenants.usage': () => alice.tenants.usage({ tenantId: tB }),
      'members.list': () => alice.members.list({ tenantId: tB }),
      'invitations.list': () => alice.invitations.list({ tenantId: tB }),
      'invitations.create': () => alice.invitations.create({ tenantId: tB, email: 'eve@x.test', role: 'owner' }),
      'invitations.revoke': () => alice.invitations.revoke({ tenantId: tB, id: '00000000-0000-4000-8000-000000000000' }),
      'members.setRole': () => alice.members.setRole({ tenantId: tB, userId: bobId, role: 'viewer' }),
      'members.remove': () => alice.members.remove({ tenantId: tB, userId: bobId }),
      'apps.list': () => alice.apps.list({ tenantId: tB }),
      'apps.get': () => alice.apps.get({ tenantId: tB, appId: appB }),
      'apps.create': () => alice.apps.create({ tenantId: tB, name: 'intruder', replicas: 1, spec: sample }),
      'apps.scale': () => alice.apps.scale({ tenantId: tB, appId: appB, replicas: 0 }),
      'apps.delete': () => alice.apps.delete({ tenantId: tB, appId: appB }),
      'apps.update': () => alice.apps.update({ tenantId: tB, appId: appB, spec: { ...sample, env: { X: '1' } } }),
      'apps.rollback': () => alice.apps.rollback({ tenantId: tB, appId: appB, revision: 1 }),
      'apps.revisions': () => alice.apps.revisions({ tenantId: tB, appId: appB }),
      'apps.rollouts': () => alice.apps.rollouts({ tenantId: tB, appId: appB }),
      'loadBalancers.list': () => alice.loadBalancers.list({ tenantId: tB }),
      'loadBalancers.get': () => alice.loadBalancers.get({ tenantId: tB, lbId: lbB }),
      'loadBalancers.create': () => alice.loadBalancers.create({ tenantId: tB, name: 'x', listeners: [{ protocol: 'tcp', rules: [{ targets: [{ appId: appB, port: 'http' }] }] }] }),
      'loadBalancers.update': () => alice.loadBalancers.update({ tenantId: tB, lbId: lbB, listeners: [{ protocol: 'tcp', rules: [{ targets: [{ appId: appB, port: 'http' }] }] }] }),
      'loadBalancers.delete': () => alice.loadBalancers.delete({ tenantId: tB, lbId: lbB }),
      // Own tenant, other tenant's LB or app: must not resolve.
      'loadBalancers.get (cross id)': () => alice.loadBalancers.get({ tenantId: tA, lbId: lbB }),
      'loadBalancers.delete (cross id)': () => alice.loadBalancers.delete({ tenantId: tA, lbId: lbB }),
      'apps.update (cross id)': () => alice.apps.update({ tenantId: tA, appId: appB, spec: { ...sample, env: { X: '1' } } }),
      'apps.rollback (cross id)': () => alice.apps.rollback({ tenantId: tA, appId: appB, revision: 1 }),
      'events.list': () => alice.events.list({ tenantId: tB }),
      'logs.list': () => alice.logs.list({ tenantId: tB, appId: appB }),
      'logs.follow': async () => {
        const it = await alice.logs.follow({ tenantId: tB, appId: appB })
        return (it as AsyncIterable<unknown>)[Symbol.asyncIterator]().next()
      },
      'metrics.app': () => alice.metrics.app({ tenantId: tB, appId: appB }),
      'tokens.list': () => alice.tokens.list({ tenantId: tB }),
      'tokens.create': () => alice.tokens.create({ tenantId: tB, name: 'x', role: 'viewer' }),
      'tokens.revoke': () => alice.tokens.revoke({ tenantId: tB, id: '00000000-0000-4000-8000-000000000000' }),
      'logs.list (cross id)': () => alice.logs.list({ tenantId: tA, appId: appB }),
      'metrics.app (cross id)': () => alice.metrics.app({ tenantId: tA, appId: appB }),
      // Own tenant id, other tenant's app id: must not resolve either.
      'apps.get (cross id)': () => alice.apps.get({ tenantId: tA, appId: appB }),
      'apps.scale (cross id)': () => alice.apps.scale({ tenantId: tA, appId: appB, replicas: 3 }),
      'apps.delete (cross id)': () => alice.apps.delete({ tenantId: tA, appId: appB }),
      'networks.list': () => alice.networks.list({ tenantId: tB }),
      'networks.get': () => alice.networks.get({ tenantId: tB, networkId: netB }),
      'networks.create': () => alice.networks.create({ tenantId: tB, name: 'intruder' }),
      'networks.delete': () => alice.networks.delete({ tenantId: tB, networkId: netB }),
      'networks.get (cross id)': () => alice.networks.get({ tenantId: tA, networkId: netB }),
      'networks.delete (cross id)': () => alice.networks.delete({ tenantId: tA, networkId: netB }),
      'audit.list': () => alice.audit.list({ tenantId: tB }),
      'live.tenant': async () => {
        const it = await alice.live.tenant({ tenantId: tB })
        return (it as AsyncIterable<unknown>)[Symbol.asyncIterator]().next()
      },
    }
    // Every tenant-scoped procedure of the router is in the list above.
    const tenantScoped = ['tenants.get', 'tenants.usage', 'logs.list', 'logs.follow', 'metrics.app', 'tokens.list', 'tokens.create', 'tokens.revoke', 'members.list', 'invitations.list', 'invitations.create', 'invitations.revoke', 'members.setRole', 'members.remove', 'apps.list', 'apps.get', 'apps.create', 'apps.scale', 'apps.delete', 'events.list', 'live.tenant', 'apps.update', 'apps.rollback', 'apps.revisions', 'apps.rollouts', 'loadBalancers.list', 'loadBalancers.get', 'loadBalancers.create', 'loadBalancers.update', 'loadBalancers.delete', 'networks.list', 'networks.get', 'networks.create', 'networks.delete', 'audit.list']
    const all = Object.keys(appRouter._def.procedures)
    const needsTenant = all.filter((p) => {
      const proc = (appRouter._def.procedures as unknown as Record<string, { _def: { inputs: { shape?: Record<string, unknown> }[] } }>)[p]!
      return proc._def.inputs.some((i) => i.shape && 'tenantId' in i.shape && p !== 'tenants.setQuotas' && p !== 'tenants.setTrusted' && p !== 'nodes.setDedicatedTenant')
    })
    expect(needsTenant.sort()).toEqual([...tenantScoped].sort())
    for (const [name, attempt] of Object.entries(attempts)) expect.soft(await code(attempt()), name).toBe('NOT_FOUND')
    // Nothing changed in B.
    const b = await bob.apps.get({ tenantId: tB, appId: appB })
    expect(b.replicas).toBe(1)
    expect(b.deleting).toBe(false)
    expect(b.revision).toBe(1)
    expect((await bob.loadBalancers.list({ tenantId: tB })).map((l) => l.name)).toEqual(['front'])
    expect((await bob.networks.list({ tenantId: tB })).map((n) => n.name)).toEqual(['default', 'private'])
    expect((await bob.members.list({ tenantId: tB })).map((m) => [m.email, m.role])).toEqual([['bob@globex.test', 'owner']])
  })

  it('keeps operator-only procedures from tenant users', async () => {
    // One call at a time: a call started before the previous one is awaited would reject unhandled.
    for (const call of [() => alice.nodes.list(), () => alice.joinTokens.list(), () => alice.tenants.create({ slug: 'x', name: 'X' }), () => alice.tenants.setQuotas({ tenantId: tA, quotas: { apps: 100 } })])
      expect(await code(call())).toBe('FORBIDDEN')
  })

  it('answers UNAUTHORIZED without a session', async () => {
    const anon = callerWithActor(bff, null)
    expect(await code(anon.auth.me())).toBe('UNAUTHORIZED')
    expect(await code(anon.apps.list({ tenantId: tA }))).toBe('UNAUTHORIZED')
  })
})

describe('roles', () => {
  it('lets viewers read but not deploy, developers deploy but not manage members', async () => {
    await addMember(bff, alice, tA, { email: 'vic@acme.test', name: 'Vic', password: 'vic-password', role: 'viewer' })
    await addMember(bff, alice, tA, { email: 'dev@acme.test', name: 'Dev', password: 'dev-password', role: 'developer' })
    const vic = await callerFor(bff, 'vic@acme.test', 'vic-password')
    const dev = await callerFor(bff, 'dev@acme.test', 'dev-password')
    expect(await code(vic.apps.list({ tenantId: tA }))).toBe('OK')
    expect(await code(vic.apps.create({ tenantId: tA, name: 'nope', replicas: 1, spec: sample }))).toBe('FORBIDDEN')
    expect(await code(dev.apps.create({ tenantId: tA, name: 'web', replicas: 1, spec: sample }))).toBe('OK')
    expect(await code(dev.invitations.create({ tenantId: tA, email: 'x@acme.test', role: 'viewer' }))).toBe('FORBIDDEN')
  })

  it('operators read any tenant but do not deploy in tenants they are not members of', async () => {
    expect(await code(op.apps.list({ tenantId: tB }))).toBe('OK')
    expect(await code(op.apps.create({ tenantId: tB, name: 'ops', replicas: 1, spec: sample }))).toBe('FORBIDDEN')
  })

  it('keeps at least one owner', async () => {
    const me = await alice.auth.me()
    expect(await code(alice.members.setRole({ tenantId: tA, userId: me.user.id, role: 'viewer' }))).toBe('CONFLICT')
  })
})

describe('admission and input', () => {
  it('rejects a deploy over quota with a clear message and creates nothing', async () => {
    const before = await bob.apps.list({ tenantId: tB })
    await expect(bob.apps.create({ tenantId: tB, name: 'big', replicas: 5, spec: sample })).rejects.toThrow(/Quota exceeded \(instances: 1 \+ 5 asked, quota 5\)/)
    expect(await bob.apps.list({ tenantId: tB })).toHaveLength(before.length)
    expect(await code(bob.apps.scale({ tenantId: tB, appId: appB, replicas: 6 }))).toBe('PRECONDITION_FAILED')
  })

  it('rejects invalid input with field errors', async () => {
    const err = await bob.apps.create({ tenantId: tB, name: 'Bad Name!', replicas: -1, spec: { ...sample, command: undefined } }).catch((e) => e)
    expect(err).toBeInstanceOf(TRPCError)
    expect(err.code).toBe('BAD_REQUEST')
    expect(await code(bob.apps.create({ tenantId: 'not-a-uuid', name: 'x', replicas: 1, spec: sample }))).toBe('BAD_REQUEST')
  })

  it('rejects duplicate names', async () => {
    expect(await code(bob.apps.create({ tenantId: tB, name: 'secret', replicas: 1, spec: sample }))).toBe('CONFLICT')
  })
})

describe('API tokens', () => {
  const get = (path: string, input: unknown, token: string) =>
    fetch(`${bff.url}/trpc/${path}?input=${encodeURIComponent(JSON.stringify({ json: input }))}`, { headers: { authorization: `Bearer ${token}` } })

  it('authenticate over HTTP for their tenant only, with at most their role', async () => {
    const { token, apiToken } = await alice.tokens.create({ tenantId: tA, name: 'ci', role: 'viewer', ttlDays: 30 })
    expect(token).toMatch(/^at_/)
    expect(apiToken).toMatchObject({ name: 'ci', role: 'viewer', createdBy: 'alice@acme.test' })
    expect((await get('apps.list', { tenantId: tA }, token)).status).toBe(200)
    expect((await get('apps.list', { tenantId: tB }, token)).status).toBe(404)
    const res = await fetch(`${bff.url}/trpc/apps.create`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ json: { tenantId: tA, name: 'by-token', replicas: 1, spec: sample } }),
    })
    expect(res.status).toBe(403)
    expect((await get('apps.list', { tenantId: tA }, 'at_not-a-real-token')).status).toBe(401)
    await alice.tokens.revoke({ tenantId: tA, id: apiToken.id })
    expect((await get('apps.list', { tenantId: tA }, token)).status).toBe(401)
  })

  it('cannot carry more rights than their creator', async () => {
    const vic = await callerFor(bff, 'vic@acme.test', 'vic-password')
    expect(await code(vic.tokens.create({ tenantId: tA, name: 'x', role: 'viewer' }))).toBe('FORBIDDEN') // viewers make no tokens
    const dev = await callerFor(bff, 'dev@acme.test', 'dev-password')
    expect(await code(dev.tokens.create({ tenantId: tA, name: 'x', role: 'owner' }))).toBe('FORBIDDEN')
    expect(await code(dev.tokens.create({ tenantId: tA, name: 'x', role: 'developer' }))).toBe('OK')
  })
})

describe('sessions', () => {
  const here = { address: '127.0.0.1' }
  it('expire', async () => {
    const { token } = await bff.core.auth.login('alice@acme.test', 'alice-password', here)
    expect(await bff.core.auth.resolve(token)).not.toBeNull()
    const pool = new (await import('pg')).default.Pool({ connectionString: bff.databaseUrl }).on('error', () => {})
    await pool.query(`UPDATE "Session" SET "expiresAt" = now() - interval '1 minute'`)
    await pool.end()
    expect(await bff.core.auth.resolve(token)).toBeNull()
  })

  it('rejects a wrong password and ends a session on logout', async () => {
    await expect(bff.core.auth.login('alice@acme.test', 'wrong-password', here)).rejects.toThrow(/Wrong email or password/)
    const { token } = await bff.core.auth.login('alice@acme.test', 'alice-password', here)
    expect(await bff.core.auth.resolve(token)).not.toBeNull()
    await callerWithActor(bff, await bff.core.auth.resolve(token), token).auth.logout()
    expect(await bff.core.auth.resolve(token)).toBeNull()
  })
})
