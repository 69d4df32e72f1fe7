import { Writable } from 'node:stream'
import pg from 'pg'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { API_LIMITS } from '../src/http/trpc-handler'
import { addMember, callerFor, OPERATOR, startTestBff, type Caller, type TestBff } from './harness'
import { enc, LEAK, rawRequest, sse, sseErrorCode, trpcGet } from './http'

/**
 * The HTTP API as an attacker meets it (issue 7 §2): every request goes through the real
 * server. Bad input is a clear 4xx, never a 500, and no answer carries internals.
 */
let bff: TestBff
let logLines: string[] = []
let op: Caller
let tenantId: string
let appId: string
let otherTenant: string
let otherApp: string
let ownerCookie: string
const ownerLogin = { email: 'owner@http.test', password: 'owner-password' }

async function login(email: string, password: string) {
  const res = await fetch(`${bff.url}/trpc/auth.login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ json: { email, password } }) })
  expect(res.status).toBe(200)
  return res.headers.get('set-cookie')!.split(';')[0]!
}

beforeAll(async () => {
  const sink = new Writable({ write: (chunk, _enc, cb) => (logLines.push(String(chunk)), cb()) })
  bff = await startTestBff({}, { log: pino({ level: 'error' }, sink) })
  op = await callerFor(bff, OPERATOR.email, OPERATOR.password)
  tenantId = (await op.tenants.create({ slug: 'http', name: 'HTTP' })).id
  otherTenant = (await op.tenants.create({ slug: 'other', name: 'Other' })).id
  await addMember(bff, op, tenantId, { ...ownerLogin, name: 'Owner', role: 'owner' })
  await addMember(bff, op, otherTenant, { email: 'o@other.test', password: 'other-password', name: 'O', role: 'owner' })
  const owner = await callerFor(bff, ownerLogin.email, ownerLogin.password)
  const other = await callerFor(bff, 'o@other.test', 'other-password')
  const spec = { command: 'node', cpuMillis: 10, memoryMb: 16 }
  appId = (await owner.apps.create({ tenantId, name: 'web', replicas: 0, spec })).id
  otherApp = (await other.apps.create({ tenantId: otherTenant, name: 'secret', replicas: 0, spec })).id
  ownerCookie = await login(ownerLogin.email, ownerLogin.password)
})
afterAll(async () => {
  await bff?.stop()
  await bff?.dropDatabase()
})

describe('headers, cookies and URLs', () => {
  it('answers a malformed session cookie or Authorization header with 401, never 500', async () => {
    const cookies = ['alveary_session=%E0%A4%A', 'alveary_session=%', 'alveary_session="x', '=%%;;alveary_session', `alveary_session=${'a'.repeat(9000)}`, 'alveary_session=as_\u00ff\u00fe', 'a=%E0%A4%A; alveary_session=%E0%A4%A']
    const auths = ['Bearer', 'Bearer %E0%A4%A', 'Basic dXNlcjpwYXNz', `Bearer ${'x'.repeat(10_000)}`, 'Bearer at_\u00ff', 'bearer  ']
    const answers = [
      ...(await Promise.all(cookies.map((cookie) => trpcGet(bff.url, 'auth.me', undefined, { cookie })))),
      ...(await Promise.all(auths.map((authorization) => trpcGet(bff.url, 'auth.me', undefined, { authorization })))),
    ]
    for (const a of answers) {
      expect(a.status).toBe(401)
      expect(a.body).not.toMatch(LEAK)
    }
    // A good session next to a broken cookie still works.
    expect((await trpcGet(bff.url, 'auth.me', undefined, { cookie: `junk=%E0%A4%A; ${ownerCookie}` })).status).toBe(200)
  })

  it('answers malformed paths, query strings, hosts and request lines with a 4xx', async () => {
    const port = bff.port
    const get = (target: string, extra = '') => rawRequest(port, `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\n${extra}Connection: close\r\n\r\n`)
    const responses = await Promise.all([
      get('/trpc/%E0%A4%A'),
      get('/trpc/auth.me?input=%E0%A4%A'),
      get(`/trpc/events.list?input=${encodeURIComponent('{"json":')}`),
      get(`/trpc/events.list?batch=1&input=${encodeURIComponent('[1,2')}`),
      get('/trpc/a.b,c.d,e?batch=1&input=%7B%7D'),
      get('/trpc/..%2F..%2Fetc%2Fpasswd'),
      get('/trpc/auth.me', 'Last-Event-ID: %E0%A4%A\r\n'),
      get(`/trpc/events.list?input=${'A'.repeat(20_000)}`),
      get('/trpc/auth.me', `X-Long: ${'b'.repeat(20_000)}\r\n`),
      rawRequest(port, 'GET /trpc/auth.me HTTP/1.1\r\nHost: [::1\r\nConnection: close\r\n\r\n'),
      rawRequest(port, 'GET /trpc/auth.me HTTP/1.1\r\nHost: a b c\r\nConnection: close\r\n\r\n'),
      rawRequest(port, 'GET http://evil.example/trpc/auth.me HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n'),
      rawRequest(port, 'GARBAGE\r\n\r\n'),
      rawRequest(port, 'GET /trpc/auth.me HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: abc\r\n\r\n'),
    ])
    for (const r of responses) {
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(r)?.[1])
      expect(status, r.slice(0, 200)).toBeGreaterThanOrEqual(400)
      expect(status, r.slice(0, 200)).toBeLessThan(500)
      expect(r).not.toMatch(LEAK)
    }
  })
})

describe('ids and cursors', () => {
  it('refuses out-of-range cursors with 400 before they reach the database', async () => {
    const headers = { cookie: ownerCookie }
    const huge = '99999999999999999999999'
    for (const [path, input] of [
      ['events.list', { tenantId, beforeId: huge }],
      ['events.list', { tenantId, beforeId: '9223372036854775808' }],
      ['events.list', { tenantId, beforeId: '-1' }],
      ['logs.list', { tenantId, appId, afterId: huge }],
      ['logs.list', { tenantId, appId, afterId: '1e5' }],
    ] as const) {
      const a = await trpcGet(bff.url, path, input, headers)
      expect(a.status, `${path} ${JSON.stringify(input)}`).toBe(400)
      expect(a.body).not.toMatch(LEAK)
    }
    expect((await trpcGet(bff.url, 'events.list', { tenantId, beforeId: '9223372036854775807' }, headers)).status).toBe(200)
    const follow = await sse(`${bff.url}/trpc/logs.follow?input=${enc({ tenantId, appId, afterId: huge })}`, headers)
    expect(sseErrorCode(follow.events)).toBe('BAD_REQUEST')
  })
})

describe('errors', () => {
  it('sends a generic message with a request id for an unexpected error, and logs the details', async () => {
    const pool = new pg.Pool({ connectionString: bff.databaseUrl }).on('error', () => {})
    await pool.query('ALTER TABLE hot."Event" RENAME TO "Event_away"')
    try {
      const a = await trpcGet(bff.url, 'events.list', { tenantId }, { cookie: ownerCookie })
      expect(a.status).toBe(500)
      const requestId = a.headers.get('x-request-id')
      expect(requestId).toMatch(/^[0-9a-f-]{36}$/)
      const err = JSON.parse(a.body).error.json
      expect(err.message).toBe(`Internal error. Request id: ${requestId} (the details are in the server log)`)
      expect(err.data).toMatchObject({ code: 'INTERNAL_SERVER_ERROR', requestId })
      expect(a.body).not.toMatch(LEAK)
      expect(a.body).not.toContain('Event')
      // The log has what the client was not told, under the same request id.
      const line = logLines.find((l) => l.includes(requestId!))
      expect(line).toBeDefined()
      expect(line).toMatch(/Event/)
    } finally {
      await pool.query('ALTER TABLE hot."Event_away" RENAME TO "Event"')
      await pool.end()
    }
    // Every answer carries its request id.
    expect((await trpcGet(bff.url, 'auth.me', undefined, { cookie: ownerCookie })).headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/)
  })

  it('maps domain errors of subscriptions like those of queries', async () => {
    const headers = { cookie: ownerCookie }
    const fleet = await sse(`${bff.url}/trpc/live.fleet`, headers)
    expect(sseErrorCode(fleet.events)).toBe('FORBIDDEN')
    // Own tenant, another tenant's app.
    const follow = await sse(`${bff.url}/trpc/logs.follow?input=${enc({ tenantId, appId: otherApp })}`, headers)
    expect(sseErrorCode(follow.events)).toBe('NOT_FOUND')
    const foreign = await sse(`${bff.url}/trpc/live.tenant?input=${enc({ tenantId: otherTenant })}`, headers)
    expect(sseErrorCode(foreign.events)).toBe('NOT_FOUND')
    for (const r of [fleet, follow, foreign]) expect(JSON.stringify(r.events)).not.toMatch(LEAK)
    // Anonymous: UNAUTHORIZED, also over SSE.
    expect(sseErrorCode((await sse(`${bff.url}/trpc/live.fleet`)).events)).toBe('UNAUTHORIZED')
  })
})

describe('request size', () => {
  it(`caps batches at ${API_LIMITS.maxBatchCalls} calls and bodies at ${API_LIMITS.maxBodyBytes} bytes`, async () => {
    const batch = (n: number) => {
      const paths = Array.from({ length: n }, () => 'auth.me').join(',')
      const input = encodeURIComponent(JSON.stringify(Object.fromEntries(Array.from({ length: n }, (_, i) => [i, { json: null }]))))
      return fetch(`${bff.url}/trpc/${paths}?batch=1&input=${input}`, { headers: { cookie: ownerCookie } })
    }
    expect((await batch(API_LIMITS.maxBatchCalls)).status).toBe(200)
    const tooMany = await batch(API_LIMITS.maxBatchCalls + 1)
    expect(tooMany.status).toBe(400)
    expect(await tooMany.text()).toMatch(/Batch call exceeds maximum size/)
    // A POST batch too, where the length is not limited by the URL.
    const n = 100
    const big = await fetch(`${bff.url}/trpc/${Array.from({ length: n }, () => 'auth.login').join(',')}?batch=1`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(Object.fromEntries(Array.from({ length: n }, (_, i) => [i, { json: { email: `x${i}@a.test`, password: 'p' } }]))),
    })
    expect(big.status).toBe(400)
    const body = await fetch(`${bff.url}/trpc/auth.login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ json: { email: 'a@b.test', password: 'x'.repeat(API_LIMITS.maxBodyBytes) } }),
    })
    expect(body.status).toBe(413)
    expect(await body.text()).not.toMatch(LEAK)
  })
})

describe('CSRF', () => {
  it('refuses mutations that a cross-site form could send, and the session survives', async () => {
    const form = new FormData()
    form.set('x', '1')
    const attempts = [
      fetch(`${bff.url}/trpc/auth.logout`, { method: 'POST', body: form, headers: { cookie: ownerCookie } }),
      fetch(`${bff.url}/trpc/auth.logout`, { method: 'POST', body: 'x=1', headers: { cookie: ownerCookie, 'content-type': 'application/x-www-form-urlencoded' } }),
      fetch(`${bff.url}/trpc/auth.logout`, { method: 'POST', body: '{"json":null}', headers: { cookie: ownerCookie, 'content-type': 'text/plain' } }),
      fetch(`${bff.url}/trpc/auth.logout`, { method: 'POST', body: '{"json":null}', headers: { cookie: ownerCookie, 'content-type': 'application/jsonx' } }),
      fetch(`${bff.url}/trpc/auth.logout`, { method: 'POST', headers: { cookie: ownerCookie } }),
    ]
    for (const res of await Promise.all(attempts)) {
      expect(res.status).toBe(415)
      expect(await res.text()).toMatch(/application\/json/)
    }
    expect((await trpcGet(bff.url, 'auth.me', undefined, { cookie: ownerCookie })).status).toBe(200)
    // Our own client's shape works: JSON (with a charset), or the CSRF header.
    const cookie = await login(ownerLogin.email, ownerLogin.password)
    const ok = await fetch(`${bff.url}/trpc/auth.logout`, { method: 'POST', body: '{"json":null}', headers: { cookie, 'content-type': 'application/json; charset=utf-8' } })
    expect(ok.status).toBe(200)
    expect((await trpcGet(bff.url, 'auth.me', undefined, { cookie })).status).toBe(401)
  })
})

describe('session cookie', () => {
  it('is Secure when the request came through a trusted HTTPS proxy, and HttpOnly, SameSite=Lax always', async () => {
    const loginWith = (headers: Record<string, string>, base = bff.url) =>
      fetch(`${base}/trpc/auth.login`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ json: ownerLogin }) }).then((r) => r.headers.get('set-cookie')!)
    const plain = await loginWith({})
    expect(plain).toMatch(/HttpOnly/)
    expect(plain).toMatch(/SameSite=Lax/)
    expect(plain).not.toMatch(/Secure/)
    // The console's proxy (loopback, trusted by default) says the browser used HTTPS.
    expect(await loginWith({ 'x-forwarded-proto': 'https' })).toMatch(/; Secure/)
    // A BFF that trusts no proxy ignores the header; one told to always is Secure over HTTP.
    const strict = await startTestBff({ ALVEARY_TRUST_PROXY: 'none', ALVEARY_OPERATOR_EMAIL: 'op@strict.test' })
    const always = await startTestBff({ ALVEARY_SECURE_COOKIES: 'always', ALVEARY_OPERATOR_EMAIL: 'op@always.test' })
    try {
      const op2 = { email: 'op@strict.test', password: OPERATOR.password }
      const set = await fetch(`${strict.url}/trpc/auth.login`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-forwarded-proto': 'https' }, body: JSON.stringify({ json: op2 }) })
      expect(set.headers.get('set-cookie')).not.toMatch(/Secure/)
      const set2 = await fetch(`${always.url}/trpc/auth.login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ json: { email: 'op@always.test', password: OPERATOR.password } }) })
      expect(set2.headers.get('set-cookie')).toMatch(/; Secure/)
    } finally {
      await Promise.all([strict.stop(), always.stop()])
      await Promise.all([strict.dropDatabase(), always.dropDatabase()])
    }
  })
})
