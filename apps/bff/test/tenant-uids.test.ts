import pg from 'pg'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { callerFor, OPERATOR, startTestBff, type TestBff } from './harness'

// A range of three: enough to see allocation, gaps and exhaustion.
let bff: TestBff
let pool: pg.Pool
beforeAll(async () => {
  bff = await startTestBff({ ALVEARY_TENANT_UID_MIN: '250000', ALVEARY_TENANT_UID_MAX: '250002' })
  pool = new pg.Pool({ connectionString: bff.databaseUrl, max: 1 })
})
afterAll(async () => {
  await pool?.end()
  await bff?.stop()
  await bff?.dropDatabase()
})

const uidOf = async (id: string) => (await pool.query('SELECT "runAsUid" FROM "Tenant" WHERE id = $1', [id])).rows[0].runAsUid as number

it('gives every tenant its own uid from the configured range, also when created at once, and says so when the range is full', async () => {
  const op = await callerFor(bff, OPERATOR.email, OPERATOR.password)
  const made = await Promise.all(['u1', 'u2', 'u3'].map((slug) => op.tenants.create({ slug, name: slug })))
  const uids = await Promise.all(made.map((t) => uidOf(t.id)))
  expect(uids.sort()).toEqual([250000, 250001, 250002])
  await expect(op.tenants.create({ slug: 'u4', name: 'u4' })).rejects.toMatchObject({ code: 'CONFLICT', message: expect.stringContaining('ALVEARY_TENANT_UID_MIN') })
  // A freed uid (a tenant removed from the database) is found again.
  const first = made.find((t) => t.slug === 'u1')!
  const u1 = await uidOf(first.id)
  await pool.query('DELETE FROM "Network" WHERE "tenantId" = $1', [first.id])
  await pool.query('DELETE FROM "Tenant" WHERE id = $1', [first.id])
  const again = await op.tenants.create({ slug: 'u5', name: 'u5' })
  expect(await uidOf(again.id)).toBe(u1)
  // Duplicate slugs are still a conflict about the slug.
  await expect(op.tenants.create({ slug: 'u2', name: 'u2' })).rejects.toMatchObject({ code: 'CONFLICT', message: expect.stringContaining('slug') })
})
