import { TRPCError } from '@trpc/server'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { appRouter } from '../src/router'
import { callerFor, callerWithActor, OPERATOR, startTestBff, type TestBff } from './harness'

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
let bobId: string

beforeAll(async () => {
  bff = await startTestBff()
  op = await callerFor(bff, OPERATOR.email, OPERATOR.password)
  tA = (await op.tenants.create({ slug: 'acme', name: 'Acme' })).id
  tB = (await op.tenants.create({ slug: 'globex', name: 'Globex', quotas: { instances: 5 } })).id
  await op.members.add({ tenantId: tA, email: 'alice@acme.test', name: 'Alice', password: 'alice-password', role: 'owner' })
  bobId = (await op.members.add({ tenantId: tB, email: 'bob@globex.test', name: 'Bob', password: 'bob-password', role: 'owner' })).userId
  alice = await callerFor(bff, 'alice@acme.test', 'alice-password')
  bob = await callerFor(bff, 'bob@globex.test', 'bob-password')
  appB = (await bob.apps.create({ tenantId: tB, name: 'secret', replicas: 1, spec: sample })).id
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
      'members.add': () => alice.members.add({ tenantId: tB, email: 'eve@x.test', role: 'owner', name: 'Eve', password: 'eve-password' }),
      'members.setRole': () => alice.members.setRole({ tenantId: tB, userId: bobId, role: 'viewer' }),
      'members.remove': () => alice.members.remove({ tenantId: tB, userId: bobId }),
      'apps.list': () => alice.apps.list({ tenantId: tB }),
      'apps.get': () => alice.apps.get({ tenantId: tB, appId: appB }),
      'apps.create': () => alice.apps.create({ tenantId: tB, name: 'intruder', replicas: 1, spec: sample }),
      'apps.scale': () => alice.apps.scale({ tenantId: tB, appId: appB, replicas: 0 }),
      'apps.delete': () => alice.apps.delete({ tenantId: tB, appId: appB }),
      'events.list': () => alice.events.list({ tenantId: tB }),
      // Own tenant id, other tenant's app id: must not resolve either.
      'apps.get (cross id)': () => alice.apps.get({ tenantId: tA, appId: appB }),
      'apps.scale (cross id)': () => alice.apps.scale({ tenantId: tA, appId: appB, replicas: 3 }),
      'apps.delete (cross id)': () => alice.apps.delete({ tenantId: tA, appId: appB }),
      'live.tenant': async () => {
        const it = await alice.live.tenant({ tenantId: tB })
        return (it as AsyncIterable<unknown>)[Symbol.asyncIterator]().next()
      },
    }
    // Every tenant-scoped procedure of the router is in the list above.
    const tenantScoped = ['tenants.get', 'tenants.usage', 'logs.list', 'logs.follow', 'metrics.app', 'members.list', 'members.add', 'members.setRole', 'members.remove', 'apps.list', 'apps.get', 'apps.create', 'apps.scale', 'apps.delete', 'events.list', 'live.tenant']
    const all = Object.keys(appRouter._def.procedures)
    const needsTenant = all.filter((p) => {
      const proc = (appRouter._def.procedures as unknown as Record<string, { _def: { inputs: { shape?: Record<string, unknown> }[] } }>)[p]!
      return proc._def.inputs.some((i) => i.shape && 'tenantId' in i.shape && p !== 'tenants.setQuotas' && p !== 'nodes.setDedicatedTenant')
    })
    expect(needsTenant.sort()).toEqual([...tenantScoped].sort())
    for (const [name, attempt] of Object.entries(attempts)) expect.soft(await code(attempt()), name).toBe('NOT_FOUND')
    // Nothing changed in B.
    const b = await bob.apps.get({ tenantId: tB, appId: appB })
    expect(b.replicas).toBe(1)
    expect(b.deleting).toBe(false)
    expect((await bob.members.list({ tenantId: tB })).map((m) => [m.email, m.role])).toEqual([['bob@globex.test', 'owner']])
  })

  it('keeps operator-only procedures from tenant users', async () => {
    for (const p of [alice.nodes.list(), alice.joinTokens.list(), alice.tenants.create({ slug: 'x', name: 'X' }), alice.tenants.setQuotas({ tenantId: tA, quotas: { apps: 100 } })])
      expect(await code(p)).toBe('FORBIDDEN')
  })

  it('answers UNAUTHORIZED without a session', async () => {
    const anon = callerWithActor(bff, null)
    expect(await code(anon.auth.me())).toBe('UNAUTHORIZED')
    expect(await code(anon.apps.list({ tenantId: tA }))).toBe('UNAUTHORIZED')
  })
})

describe('roles', () => {
  it('lets viewers read but not deploy, developers deploy but not manage members', async () => {
    await alice.members.add({ tenantId: tA, email: 'vic@acme.test', name: 'Vic', password: 'vic-password', role: 'viewer' })
    await alice.members.add({ tenantId: tA, email: 'dev@acme.test', name: 'Dev', password: 'dev-password', role: 'developer' })
    const vic = await callerFor(bff, 'vic@acme.test', 'vic-password')
    const dev = await callerFor(bff, 'dev@acme.test', 'dev-password')
    expect(await code(vic.apps.list({ tenantId: tA }))).toBe('OK')
    expect(await code(vic.apps.create({ tenantId: tA, name: 'nope', replicas: 1, spec: sample }))).toBe('FORBIDDEN')
    expect(await code(dev.apps.create({ tenantId: tA, name: 'web', replicas: 1, spec: sample }))).toBe('OK')
    expect(await code(dev.members.add({ tenantId: tA, email: 'x@acme.test', role: 'viewer', name: 'X', password: 'x-password' }))).toBe('FORBIDDEN')
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

describe('sessions', () => {
  it('rejects a wrong password and ends a session on logout', async () => {
    await expect(bff.core.auth.login('alice@acme.test', 'wrong-password')).rejects.toThrow(/Wrong email or password/)
    const { token } = await bff.core.auth.login('alice@acme.test', 'alice-password')
    expect(await bff.core.auth.resolve(token)).not.toBeNull()
    await callerWithActor(bff, await bff.core.auth.resolve(token), token).auth.logout()
    expect(await bff.core.auth.resolve(token)).toBeNull()
  })
})
