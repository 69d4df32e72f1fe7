import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { addMember, callerFor, OPERATOR, startTestBff, type TestBff } from './harness'

// Concurrent writes to one app (updates, rollbacks, scales, a delete) through the real router
// and PostgreSQL: each either applies or answers CONFLICT; none is an internal error, and the
// revisions stay one gapless sequence.
let bff: TestBff
let tenantId: string
type Caller = Awaited<ReturnType<typeof callerFor>>
let dev: Caller

const spec = (v: number) => ({ command: 'node', args: ['examples/hello/server.js'], cpuMillis: 10, memoryMb: 8, env: { V: String(v) } })

beforeAll(async () => {
  bff = await startTestBff()
  const op = await callerFor(bff, OPERATOR.email, OPERATOR.password)
  tenantId = (await op.tenants.create({ slug: 'writes', name: 'Writes' })).id
  await addMember(bff, op, tenantId, { email: 'dev@writes.test', name: 'Dev', password: 'dev-password', role: 'owner' })
  dev = await callerFor(bff, 'dev@writes.test', 'dev-password')
})
afterAll(async () => {
  await bff?.stop()
  await bff?.dropDatabase()
})

/** The tRPC code of a failed call; null when it succeeded. */
const outcome = (p: Promise<unknown>) => p.then(() => null, (err: { code?: string; message?: string }) => `${err.code}: ${err.message}`)

describe('concurrent writes to one app', () => {
  it('updates, rollbacks and scales at once: each applies or conflicts, never an internal error', async () => {
    const appId = (await dev.apps.create({ tenantId, name: 'busy', replicas: 2, spec: spec(0) })).id
    for (let round = 0; round < 3; round++) {
      const calls = [
        ...Array.from({ length: 12 }, (_, k) => outcome(dev.apps.update({ tenantId, appId, spec: spec(round * 100 + k + 1) }))),
        ...Array.from({ length: 4 }, (_, k) => outcome(dev.apps.scale({ tenantId, appId, replicas: 1 + ((round + k) % 4) }))),
        outcome(dev.apps.rollback({ tenantId, appId, revision: 1 })),
      ]
      const results = await Promise.all(calls)
      // The rollback may run before any update of the first round: revision 1 is then still the current one.
      const rolledBackFirst = (r: string | null, i: number) => round === 0 && i === calls.length - 1 && r === 'BAD_REQUEST: Revision 1 is the current one'
      const bad = results.filter((r, i) => r !== null && !r.startsWith('CONFLICT') && !rolledBackFirst(r, i))
      expect(bad).toEqual([])
      const revs = await dev.apps.revisions({ tenantId, appId })
      expect(revs.map((r) => r.revision)).toEqual(Array.from({ length: revs.length }, (_, k) => revs.length - k))
      expect((await dev.apps.get({ tenantId, appId })).revision).toBe(revs.length)
    }
  }, 120_000)

  it('a write stuck behind a lock held too long answers CONFLICT, not an internal error', async () => {
    const appId = (await dev.apps.create({ tenantId, name: 'held', replicas: 1, spec: spec(0) })).id
    const holder = new pg.Client({ connectionString: bff.databaseUrl })
    await holder.connect()
    try {
      await holder.query('BEGIN')
      await holder.query('SELECT id FROM "App" WHERE id = $1 FOR UPDATE', [appId])
      await expect(dev.apps.update({ tenantId, appId, spec: spec(1) })).rejects.toMatchObject({ code: 'CONFLICT', message: expect.stringMatching(/try again/) })
    } finally {
      await holder.query('ROLLBACK').catch(() => {})
      await holder.end()
    }
    await dev.apps.update({ tenantId, appId, spec: spec(2) })
    expect((await dev.apps.get({ tenantId, appId })).revision).toBe(2)
  }, 60_000)
})
