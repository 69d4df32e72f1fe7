import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { addMember, callerFor, OPERATOR, startTestBff, type TestBff } from './harness'

/**
 * If-Match is a conditional write, not a check before the write: two updates sent at once
 * with the same ETag meet in core's transaction (the row locked), so exactly one goes ahead
 * and the other is refused with 412.
 */
const sample = { driver: 'process' as const, command: 'node', args: ['examples/hello/server.js'], cpuMillis: 10, memoryMb: 16 }

let bff: TestBff
let tenantId: string
let token: string

async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${bff.url}/api/v1/tenants/${tenantId}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined && { 'content-type': 'application/json' }), ...headers },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  })
  const text = await res.text()
  return { status: res.status, etag: res.headers.get('etag'), body: text ? JSON.parse(text) : null }
}

beforeAll(async () => {
  bff = await startTestBff()
  const op = await callerFor(bff, OPERATOR.email, OPERATOR.password)
  tenantId = (await op.tenants.create({ slug: 'racers', name: 'Racers' })).id
  await addMember(bff, op, tenantId, { email: 'rae@racers.test', name: 'Rae', password: 'rae-password', role: 'owner' })
  const rae = await callerFor(bff, 'rae@racers.test', 'rae-password')
  token = (await rae.tokens.create({ tenantId, name: 'ci', role: 'owner', ttlDays: 1 })).token
}, 120_000)
afterAll(async () => {
  await bff?.stop()
  await bff?.dropDatabase()
})

describe('If-Match', () => {
  it('lets exactly one of two app updates with the same ETag through (scale, update), the other gets 412', async () => {
    const appId = (await call('POST', '/apps', { name: 'web', replicas: 0, spec: sample })).body.id as string
    for (let round = 1; round <= 4; round++) {
      const { etag } = await call('GET', `/apps/${appId}`)
      const headers = { 'if-match': etag! }
      const both =
        round % 2
          ? [call('POST', `/apps/${appId}/scale`, { replicas: round }, headers), call('POST', `/apps/${appId}/scale`, { replicas: round + 10 }, headers)]
          : [call('PATCH', `/apps/${appId}`, { spec: { ...sample, env: { ROUND: `${round}a` } } }, headers), call('POST', `/apps/${appId}/scale`, { replicas: round + 10 }, headers)]
      const answers = await Promise.all(both)
      expect(answers.map((a) => a.status).sort(), `round ${round}: ${JSON.stringify(answers.map((a) => a.body?.message ?? a.status))}`).toEqual([202, 412])
      expect(answers.find((a) => a.status === 412)!.body.data.coreCode).toBe('PRECONDITION_FAILED')
    }
    // The winner's write is what the next read sees, and its new ETag works.
    const now = await call('GET', `/apps/${appId}`)
    expect((await call('POST', `/apps/${appId}/scale`, { replicas: 0 }, { 'if-match': now.etag! })).status).toBe(202)
    expect((await call('POST', `/apps/${appId}/scale`, { replicas: 0 }, { 'if-match': '*' })).status).toBe(202)
  })

  it('lets exactly one of two load balancer updates with the same ETag through', async () => {
    const appId = (await call('GET', '/apps')).body[0].id as string
    const settings = (port: number) => ({ listeners: [{ protocol: 'http', port, rules: [{ targets: [{ appId, port: 'http' }] }] }] })
    const created = await call('POST', '/load-balancers', { name: 'front', ...settings(30_100) })
    expect(created.status).toBe(202)
    const lbId = created.body.id as string
    for (let round = 1; round <= 3; round++) {
      const { etag } = await call('GET', `/load-balancers/${lbId}`)
      const answers = await Promise.all([
        call('PUT', `/load-balancers/${lbId}`, settings(30_100 + 2 * round), { 'if-match': etag! }),
        call('PUT', `/load-balancers/${lbId}`, settings(30_101 + 2 * round), { 'if-match': etag! }),
      ])
      expect(answers.map((a) => a.status).sort(), `round ${round}: ${JSON.stringify(answers.map((a) => a.body?.message ?? a.status))}`).toEqual([202, 412])
    }
    const now = await call('GET', `/load-balancers/${lbId}`)
    expect((await call('PUT', `/load-balancers/${lbId}`, settings(30_150), { 'if-match': now.etag! })).status).toBe(202)
  })
})
