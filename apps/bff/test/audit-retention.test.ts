import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { callerFor, OPERATOR, startTestBff, type Caller, type TestBff } from './harness'

/**
 * Audit retention (ALVEARY_AUDIT_RETENTION_DAYS): the leader's housekeeping removes rows older
 * than the retention through the one privileged path (audit_record_expire); everything else
 * still finds the table append-only, the privileged path included for rows inside the retention.
 */
let bff: TestBff
let op: Caller
let client: pg.Client

const DAY = 86_400_000
/** A row as the trail writes it, `daysAgo` old. */
async function insertRow(daysAgo: number, action: string) {
  await client.query(`INSERT INTO "AuditRecord" ("at", "actorKind", "sourceIp", "door", "action", "result") VALUES ($1::timestamptz AT TIME ZONE 'UTC', 'session', '127.0.0.1', 'trpc', $2, 'ok')`, [
    new Date(Date.now() - daysAgo * DAY).toISOString(),
    action,
  ])
}
const actions = async () => (await client.query<{ action: string }>(`SELECT action FROM "AuditRecord" WHERE action LIKE 'test.%' ORDER BY action`)).rows.map((r) => r.action)

beforeAll(async () => {
  bff = await startTestBff({ ALVEARY_AUDIT_RETENTION_DAYS: '30' })
  op = await callerFor(bff, OPERATOR.email, OPERATOR.password)
  client = new pg.Client({ connectionString: bff.databaseUrl })
  await client.connect()
})
afterAll(async () => {
  await client?.end()
  await bff?.stop()
  await bff?.dropDatabase()
})

describe('audit retention', () => {
  it('removes rows older than the retention, keeps the rest, and the table stays append-only otherwise', async () => {
    await insertRow(400, 'test.ancient')
    await insertRow(31, 'test.old')
    await insertRow(29, 'test.recent')
    await op.tenants.create({ slug: 'kept', name: 'Kept' }) // a row written now, by the trail itself
    expect(await actions()).toEqual(['test.ancient', 'test.old', 'test.recent'])

    expect(await bff.core.auditRetention.expire()).toBe(2)
    expect(await actions()).toEqual(['test.recent'])
    expect((await op.audit.list({ action: 'tenants.create', limit: 10 })).records).toHaveLength(1)
    expect(await bff.core.auditRetention.expire()).toBe(0)

    // Plain writes are still refused, old rows included, and so is the privileged path for rows inside its cutoff.
    await insertRow(60, 'test.old-again')
    await expect(client.query(`DELETE FROM "AuditRecord" WHERE action = 'test.old-again'`)).rejects.toThrow(/append-only/)
    await expect(client.query(`UPDATE "AuditRecord" SET result = 'failed' WHERE action = 'test.old-again'`)).rejects.toThrow(/append-only/)
    await expect(client.query(`TRUNCATE "AuditRecord"`)).rejects.toThrow(/append-only/)
    // The function's permission ends with it: a DELETE after it in the same transaction is refused.
    await client.query('BEGIN')
    try {
      await client.query(`SELECT "audit_record_expire"((now() - interval '45 days')::timestamp(3), 10)`)
      await expect(client.query(`DELETE FROM "AuditRecord" WHERE action = 'test.recent'`)).rejects.toThrow(/append-only/)
    } finally {
      await client.query('ROLLBACK')
    }
    expect(await actions()).toEqual(['test.old-again', 'test.recent'])
  })

  it('runs as the leader’s hourly housekeeping', async () => {
    await insertRow(90, 'test.housekeeping')
    // The periodic controller is registered with the leader's loops; here its first run is awaited.
    await bff.core.auditRetention.controller.handle(undefined)
    expect(await actions()).not.toContain('test.housekeeping')
    expect(bff.core.auditRetention.controller.periodic?.everyMs).toBe(3_600_000)
  })
})
