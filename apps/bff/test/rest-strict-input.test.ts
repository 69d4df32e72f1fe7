import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { addMember, callerFor, OPERATOR, startTestBff, type TestBff } from './harness'
import { trpcGet, trpcPost } from './http'

/**
 * Bad input is refused alike by both doors, before and after the REST adapter has served
 * requests (it switches zod's coercion on in the input schemas it serves, which are tRPC's
 * too: "" and null passed as 0, true as 1). Query strings are typed strictly per field.
 */
const sample = { driver: 'process' as const, command: 'node', args: ['examples/hello/server.js'], cpuMillis: 10, memoryMb: 16 }

let bff: TestBff
let tenantId: string
let token: string
let appId: string

async function rest(method: string, path: string, body?: unknown) {
  const res = await fetch(`${bff.url}/api/v1/tenants/${tenantId}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  })
  const text = await res.text()
  return { status: res.status, body: text ? JSON.parse(text) : null }
}
const auth = () => ({ authorization: `Bearer ${token}` })
/** A tRPC mutation's answer: status and field errors. */
async function trpc(path: string, input: unknown, get = false) {
  const a = get ? await trpcGet(bff.url, path, input, auth()) : await trpcPost(bff.url, path, input, auth())
  const body = JSON.parse(a.body)
  return { status: a.status, fieldErrors: body.error?.json?.data?.fieldErrors ?? null, data: body.result?.data?.json }
}

beforeAll(async () => {
  bff = await startTestBff()
  const op = await callerFor(bff, OPERATOR.email, OPERATOR.password)
  tenantId = (await op.tenants.create({ slug: 'strict', name: 'Strict' })).id
  await addMember(bff, op, tenantId, { email: 'sid@strict.test', name: 'Sid', password: 'sid-password', role: 'owner' })
  const sid = await callerFor(bff, 'sid@strict.test', 'sid-password')
  token = (await sid.tokens.create({ tenantId, name: 'ci', role: 'owner', ttlDays: 1 })).token
}, 120_000)
afterAll(async () => {
  await bff?.stop()
  await bff?.dropDatabase()
})

const BAD_NUMBERS: unknown[] = ['', ' ', '12abc', '3', null, true, '0x10', []]

describe('input validation through REST and tRPC', () => {
  it('refuses numbers that are not JSON numbers on both doors, before and after REST calls', async () => {
    // tRPC first: nothing has gone through REST yet.
    const before = await trpc('apps.create', { tenantId, name: 'web', replicas: '', spec: sample })
    expect(before.status).toBe(400)
    const created = await rest('POST', '/apps', { name: 'web', replicas: 0, spec: sample })
    expect(created.status).toBe(201)
    appId = created.body.id
    // A query through REST too (the adapter coerces query and body routes alike).
    expect((await rest('GET', '/events?limit=1')).status).toBe(200)

    const problems: string[] = []
    for (const bad of BAD_NUMBERS) {
      const viaRest = await rest('POST', `/apps/${appId}/scale`, { replicas: bad })
      const viaTrpc = await trpc('apps.scale', { tenantId, appId, replicas: bad })
      if (viaRest.status !== 422) problems.push(`REST replicas=${JSON.stringify(bad)}: ${viaRest.status}`)
      if (viaTrpc.status !== 400) problems.push(`tRPC replicas=${JSON.stringify(bad)}: ${viaTrpc.status}`)
      else if (JSON.stringify(viaTrpc.fieldErrors) !== JSON.stringify(viaRest.body?.data?.fieldErrors)) problems.push(`replicas=${JSON.stringify(bad)}: REST says ${JSON.stringify(viaRest.body?.data?.fieldErrors)}, tRPC ${JSON.stringify(viaTrpc.fieldErrors)}`)
      const spec = { ...sample, cpuMillis: bad }
      if ((await rest('POST', '/apps', { name: 'other', replicas: 0, spec })).status !== 422) problems.push(`REST cpuMillis=${JSON.stringify(bad)} accepted`)
      if ((await trpc('apps.create', { tenantId, name: 'other', replicas: 0, spec })).status !== 400) problems.push(`tRPC cpuMillis=${JSON.stringify(bad)} accepted`)
    }
    expect(problems).toEqual([])
    // Query input on tRPC is JSON too: a string is not a limit.
    expect((await trpc('events.list', { tenantId, limit: '1' }, true)).status).toBe(400)
    expect((await trpc('audit.list', { tenantId, limit: true }, true)).status).toBe(400)
    // Nothing was scaled by any of it.
    expect((await rest('GET', `/apps/${appId}`)).body.replicas).toBe(0)
  })

  it('types query strings per field: plain decimals are numbers, anything else is refused', async () => {
    for (let i = 0; i < 3; i++) await rest('POST', `/apps/${appId}/scale`, { replicas: 0 })
    const two = await rest('GET', '/events?limit=2')
    expect(two.status).toBe(200)
    expect(two.body).toHaveLength(2)
    for (const bad of ['12abc', '0x10', '1e2', ' 5', '-', 'true']) {
      const res = await rest('GET', `/events?limit=${encodeURIComponent(bad)}`)
      expect(res.status, `limit=${bad}`).toBe(422)
      expect(Object.keys(res.body.data.fieldErrors)).toEqual(['limit'])
    }
    expect((await rest('GET', '/events?limit=0')).status).toBe(422)
    // An empty parameter is an absent one: the default applies.
    expect((await rest('GET', '/events?limit=')).status).toBe(200)
    // A text field keeps digits as text.
    const audit = await fetch(`${bff.url}/api/v1/audit?tenantId=${tenantId}&action=123&limit=5`, { headers: auth() })
    expect(audit.status).toBe(200)
    expect(((await audit.json()) as { records: unknown[] }).records).toEqual([])
  })
})
