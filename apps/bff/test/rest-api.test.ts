import { validate } from '@readme/openapi-parser'
import { randomUUID } from 'node:crypto'
import http from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { addMember, callerFor, OPERATOR, startTestBff, waitFor, type Caller, type TestBff } from './harness'

/**
 * The REST API (/api/v1) over real HTTP: its OpenAPI document validates, every route answers
 * the right tenant's token and refuses the wrong one's like /trpc does, and the HTTP
 * semantics the document promises hold (201/202 with Location, 404, 409, 412, 422, 429,
 * cursors, ETag/If-Match).
 */
const sample = { driver: 'process' as const, command: 'node', args: ['examples/hello/server.js'], cpuMillis: 10, memoryMb: 16 }

let bff: TestBff
let op: Caller
let tA: string
let tB: string
let tokenA: string
let tokenB: string
let opSession: string
const ids: Record<string, string> = {}

interface Res {
  status: number
  headers: Headers
  body: any // eslint-disable-line @typescript-eslint/no-explicit-any
}
async function call(method: string, path: string, token: string | null, body?: unknown, headers: Record<string, string> = {}): Promise<Res> {
  const res = await fetch(`${bff.url}/api/v1${path}`, {
    method,
    headers: { ...(token && { authorization: `Bearer ${token}` }), ...(body !== undefined && { 'content-type': 'application/json' }), 'user-agent': 'rest-test', ...headers },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  })
  const text = await res.text()
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : null }
}

beforeAll(async () => {
  bff = await startTestBff()
  op = await callerFor(bff, OPERATOR.email, OPERATOR.password)
  tA = (await op.tenants.create({ slug: 'acme', name: 'Acme', quotas: { apps: 3 } })).id
  tB = (await op.tenants.create({ slug: 'globex', name: 'Globex' })).id
  ids.userA = (await addMember(bff, op, tA, { email: 'alice@acme.test', name: 'Alice', password: 'alice-password', role: 'owner' })).userId
  await addMember(bff, op, tB, { email: 'bob@globex.test', name: 'Bob', password: 'bob-password', role: 'owner' })
  const alice = await callerFor(bff, 'alice@acme.test', 'alice-password')
  const bob = await callerFor(bff, 'bob@globex.test', 'bob-password')
  tokenA = (await alice.tokens.create({ tenantId: tA, name: 'ci', role: 'owner', ttlDays: 1 })).token
  tokenB = (await bob.tokens.create({ tenantId: tB, name: 'ci', role: 'owner', ttlDays: 1 })).token
  ids.tokenA = (await alice.tokens.list({ tenantId: tA }))[0]!.id
  ids.viewer = (await addMember(bff, alice, tA, { email: 'val@acme.test', name: 'Val', password: 'val-password', role: 'viewer' })).userId
  const login = await fetch(`${bff.url}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: OPERATOR.email, password: OPERATOR.password }) })
  expect(login.status).toBe(200)
  opSession = /alveary_session=([^;]+)/.exec(login.headers.get('set-cookie') ?? '')![1]!
}, 120_000)
afterAll(async () => {
  await bff?.stop()
  await bff?.dropDatabase()
})

describe('REST API', () => {
  it('serves an OpenAPI 3.1 document that validates', async () => {
    const res = await call('GET', '/openapi.json', null)
    expect(res.status).toBe(200)
    expect(res.body.openapi).toBe('3.1.0')
    const result = await validate(structuredClone(res.body))
    expect(result.valid ? [] : result.errors).toEqual([])
    expect(res.body.paths['/tenants/{tenantId}/apps/{appId}'].get.responses['200'].headers.ETag).toBeTruthy()
    expect(res.body.paths['/tenants/{tenantId}/apps'].post.responses['201']).toBeTruthy()
    // The browsable viewer and its assets (no CDN).
    const page = await fetch(`${bff.url}/api/v1/docs/`)
    expect(page.status).toBe(200)
    expect(await page.text()).toContain('/api/v1/docs/swagger-ui-bundle.js')
    const bundle = await fetch(`${bff.url}/api/v1/docs/swagger-ui-bundle.js`)
    expect(bundle.status).toBe(200)
    expect((await bundle.arrayBuffer()).byteLength).toBeGreaterThan(100_000)
    expect((await fetch(`${bff.url}/api/v1/docs/../../../etc/passwd`)).status).toBe(404)
  })

  it('deploys, reads, scales and deletes with the HTTP semantics it documents', async () => {
    const created = await call('POST', `/tenants/${tA}/apps`, tokenA, { name: 'web', replicas: 1, spec: sample })
    expect(created.status).toBe(201)
    const location = created.headers.get('location')!
    expect(location).toBe(`/api/v1/tenants/${tA}/apps/${created.body.id}`)
    ids.appA = created.body.id

    const read = await call('GET', location.slice('/api/v1'.length), tokenA)
    expect(read.status).toBe(200)
    expect(read.body.name).toBe('web')
    const etag = read.headers.get('etag')!
    expect(etag).toMatch(/^W\/"/)

    const scaled = await call('POST', `/tenants/${tA}/apps/${ids.appA}/scale`, tokenA, { replicas: 2 }, { 'if-match': etag })
    expect(scaled.status).toBe(202)
    expect(scaled.headers.get('location')).toBe(location)
    // The same ETag again: the app changed since, the update is refused.
    const stale = await call('POST', `/tenants/${tA}/apps/${ids.appA}/scale`, tokenA, { replicas: 5 }, { 'if-match': etag })
    expect(stale.status).toBe(412)
    const fresh = (await call('GET', `/tenants/${tA}/apps/${ids.appA}`, tokenA)).headers.get('etag')!
    expect(fresh).not.toBe(etag)
    const updated = await call('PATCH', `/tenants/${tA}/apps/${ids.appA}`, tokenA, { spec: { ...sample, env: { VERSION: '2' } } }, { 'if-match': fresh })
    expect(updated.status).toBe(202)
    expect((await call('GET', `/tenants/${tA}/apps/${ids.appA}`, tokenA)).body.revision).toBe(2)

    const dup = await call('POST', `/tenants/${tA}/apps`, tokenA, { name: 'web', replicas: 1, spec: sample })
    expect(dup.status).toBe(409)
    const invalid = await call('POST', `/tenants/${tA}/apps`, tokenA, { name: 'Not A Name!', replicas: -1, spec: sample })
    expect(invalid.status).toBe(422)
    expect(Object.keys(invalid.body.data.fieldErrors)).toEqual(expect.arrayContaining(['name', 'replicas']))
    expect(JSON.stringify(invalid.body)).not.toMatch(/at .*\.ts|node_modules/)
    const malformed = await fetch(`${bff.url}/api/v1/tenants/${tA}/apps`, { method: 'POST', headers: { authorization: `Bearer ${tokenA}`, 'content-type': 'application/json' }, body: '{"name":' })
    expect(malformed.status).toBe(400)
    await call('POST', `/tenants/${tA}/apps`, tokenA, { name: 'two', replicas: 0, spec: sample })
    await call('POST', `/tenants/${tA}/apps`, tokenA, { name: 'three', replicas: 0, spec: sample })
    const quota = await call('POST', `/tenants/${tA}/apps`, tokenA, { name: 'four', replicas: 0, spec: sample })
    expect(quota.status).toBe(409)
    expect(quota.body.data.coreCode).toBe('QUOTA_EXCEEDED')

    const rows = (await op.audit.list({ tenantId: tA, action: 'apps.', limit: 20 })).records
    expect(rows.filter((r) => r.door === 'rest').map((r) => r.result)).toEqual(expect.arrayContaining(['ok', 'CONFLICT', 'QUOTA_EXCEEDED']))
    expect(rows.find((r) => r.door === 'rest' && r.action === 'apps.create')!.userAgent).toBe('rest-test')
  })

  it('keeps booleans strict after REST requests switched coercion on: the string "false" grants nothing', async () => {
    // A GET with query input makes the adapter coerce the shared input schemas from then on.
    expect((await call('GET', `/tenants/${tA}/apps`, tokenA)).status).toBe(200)
    const put = await call('PUT', `/tenants/${tB}/trusted`, opSession, { trusted: 'false' })
    expect(put.status).toBe(422)
    await expect(op.tenants.setTrusted({ tenantId: tB, trusted: 'false' as unknown as boolean })).rejects.toThrow()
    expect((await op.tenants.list()).find((t) => t.id === tB)!.trusted).toBe(false)
  })

  it('invites over REST: a person invites, the link signs the new member up, the wrong tenant sees nothing', async () => {
    const session = async (email: string, password: string) => {
      const res = await fetch(`${bff.url}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password }) })
      return /alveary_session=([^;]+)/.exec(res.headers.get('set-cookie') ?? '')![1]!
    }
    const alice = await session('alice@acme.test', 'alice-password')
    const bob = await session('bob@globex.test', 'bob-password')
    expect((await call('POST', `/tenants/${tA}/invitations`, bob, { email: 'eve@acme.test', role: 'owner' })).status).toBe(404)
    const invited = await call('POST', `/tenants/${tA}/invitations`, alice, { email: 'ivy@acme.test', role: 'developer' })
    expect(invited.status).toBe(201)
    expect((await call('GET', `/tenants/${tA}/invitations`, alice)).body.map((i: { email: string }) => i.email)).toContain('ivy@acme.test')
    expect((await call('GET', `/tenants/${tA}/invitations`, bob)).status).toBe(404)
    const preview = await call('GET', `/invitations/preview?token=${encodeURIComponent(invited.body.token)}`, null)
    expect(preview.status).toBe(200)
    expect(preview.body.tenant.slug).toBe('acme')
    const signUp = await call('POST', '/invitations/sign-up', null, { token: invited.body.token, name: 'Ivy', password: 'ivy-password-1' })
    expect(signUp.status).toBe(200)
    expect(signUp.body.tenantSlug).toBe('acme')
    const ivy = await session('ivy@acme.test', 'ivy-password-1')
    expect((await call('GET', `/tenants/${tA}/apps`, ivy)).status).toBe(200)
    expect((await call('GET', `/tenants/${tB}/apps`, ivy)).status).toBe(404)
    // Revoking: an invitation to someone else, gone from the list.
    const second = await call('POST', `/tenants/${tA}/invitations`, alice, { email: 'ian@acme.test', role: 'viewer' })
    expect((await call('DELETE', `/tenants/${tA}/invitations/${second.body.invitation.id}`, bob)).status).toBe(404)
    expect((await call('DELETE', `/tenants/${tA}/invitations/${second.body.invitation.id}`, alice)).status).toBe(200)
    expect((await call('GET', `/tenants/${tA}/invitations`, alice)).body).toEqual([])
  })

  it('keeps an idle keep-alive connection open longer than clients keep theirs', async () => {
    // Node's default (5 s) closes first: a client (or a load balancer, ~60 s) sending on the idle
    // connection at that moment gets a reset ("fetch failed"); clients must be the ones to close.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
    const get = () =>
      new Promise<{ status: number; reused: boolean }>((resolve, reject) => {
        const req = http.get(`${bff.url}/healthz`, { agent }, (res) => {
          res.resume()
          res.on('end', () => resolve({ status: res.statusCode ?? 0, reused: req.reusedSocket }))
        })
        req.on('error', reject)
      })
    try {
      expect(await get()).toEqual({ status: 200, reused: false })
      await new Promise((r) => setTimeout(r, 6_000)) // idle: longer than Node's default keep-alive timeout
      expect(await get()).toEqual({ status: 200, reused: true })
    } finally {
      agent.destroy()
    }
  })

  it('pages lists with cursors', async () => {
    const first = await call('GET', `/tenants/${tA}/events?limit=2`, tokenA)
    expect(first.status).toBe(200)
    expect(first.body).toHaveLength(2)
    const cursor = first.headers.get('x-next-cursor')!
    expect(cursor).toBe(first.body[1].id)
    const second = await call('GET', `/tenants/${tA}/events?limit=2&beforeId=${cursor}`, tokenA)
    expect(second.body.length).toBeGreaterThan(0)
    expect(BigInt(second.body[0].id)).toBeLessThan(BigInt(cursor))
    const audit = await call('GET', `/audit?tenantId=${tA}&limit=1`, tokenA)
    expect(audit.status).toBe(200)
    expect(audit.headers.get('x-next-cursor')).toBe(audit.body.records[0].id)
  })

  it('answers 429 with Retry-After when sign-ins are throttled', async () => {
    let res: Res | null = null
    for (let i = 0; i < 8 && res?.status !== 429; i++) res = await call('POST', '/auth/login', null, { email: 'nobody@acme.test', password: 'wrong' })
    expect(res!.status).toBe(429)
    expect(Number(res!.headers.get('retry-after'))).toBeGreaterThan(0)
  }, 120_000)

  it("answers every route for the right tenant's token and refuses the wrong tenant's", async () => {
    const doc = (await call('GET', '/openapi.json', null)).body as { paths: Record<string, Record<string, { operationId: string }>> }
    ids.lbA = (await call('POST', `/tenants/${tA}/load-balancers`, tokenA, { name: 'front', listeners: [{ protocol: 'http', rules: [{ targets: [{ appId: ids.appA, port: 'http' }] }] }] })).body.id
    ids.netA = (await call('POST', `/tenants/${tA}/networks`, tokenA, { name: 'private', cidr: '100.64.8.0/24' })).body.id
    expect(ids.lbA && ids.netA).toBeTruthy()
    const fill = (path: string) =>
      path
        .replace('{tenantId}', tA)
        .replace('{appId}', ids.appA!)
        .replace('{lbId}', ids.lbA!)
        .replace('{networkId}', ids.netA!)
        .replace('{userId}', ids.viewer!)
        .replace('{nodeId}', randomUUID())
        .replace('{moveId}', randomUUID())
        .replace('{id}', path.includes('/tokens/') ? ids.tokenA! : randomUUID())
    const lb = { listeners: [{ protocol: 'http', rules: [{ targets: [{ appId: ids.appA, port: 'http' }] }] }] }
    const bodies: Record<string, unknown> = {
      'apps-create': { name: 'rest-route', replicas: 0, spec: sample },
      'apps-update': { spec: sample },
      'apps-scale': { replicas: 1 },
      'apps-rollback': { revision: 1 },
      'loadBalancers-create': { name: 'front2', ...lb },
      'loadBalancers-update': lb,
      'networks-create': { name: 'second', cidr: '100.64.9.0/24' },
      'members-setRole': { role: 'developer' },
      'tokens-create': { name: 'x', role: 'viewer' },
      'tenants-create': { slug: 'initech', name: 'Initech' },
      'tenants-setQuotas': { quotas: { apps: 10 } },
      'tenants-setTrusted': { trusted: false },
      'nodes-setDedicatedTenant': { tenantId: null },
      'nodes-rekey': {},
      'loadBalancers-setNode': { enabled: true },
      'joinTokens-create': { description: 'x' },
      'moves-start': { instanceId: randomUUID() },
      'auth-login': { email: 'alice@acme.test', password: 'alice-password' },
      'invitations-create': { email: 'new@acme.test', role: 'viewer' },
      'invitations-signUp': { token: 'iv_nothing', name: 'Nobody', password: 'nobody-password' },
    }
    // What each route answers the right token: the tenant's owner token for tenant routes
    // (credentials are not made by tokens: 403), an operator's session for platform routes.
    // Invitations are made by people, not tokens (403); a random invitation id is no invitation (404).
    const ok: Record<string, number[]> = { 'tokens-create': [403], 'invitations-create': [403], 'invitations-revoke': [404], 'nodes-rekey': [404], 'joinTokens-create': [201], 'moves-start': [404, 422], 'moves-cancel': [404, 409] }
    const tenantRoute = (p: string) => p.startsWith('/tenants/{tenantId}')
    const operatorOnly = (p: string) => /^\/(nodes|join-tokens|moves|scheduler|metrics\/nodes)/.test(p) || p === '/tenants/{tenantId}/quotas' || p === '/tenants/{tenantId}/trusted'
    // Ends things (the viewer's membership, the token in use): last.
    const order = (id: string) => (/tokens-revoke|logout/.test(id) ? 2 : /delete|remove|revoke/.test(id) ? 1 : 0)
    const ops = Object.entries(doc.paths)
      .flatMap(([path, item]) => Object.entries(item).map(([method, o]) => ({ path, method: method.toUpperCase(), id: o.operationId })))
      .filter((o) => o.id !== 'audit-export')
      .sort((a, b) => order(a.id) - order(b.id))
    expect(ops.length).toBeGreaterThan(40)
    const problems: string[] = []
    for (const o of ops) {
      const url = fill(o.path)
      const body = o.method === 'GET' || o.method === 'DELETE' ? undefined : (bodies[o.id] ?? {})
      const query = o.id === 'metrics-nodes' ? '?nodeIds=' + randomUUID() : o.id === 'invitations-preview' ? '?token=iv_nothing' : ''
      if (tenantRoute(o.path) && !operatorOnly(o.path)) {
        const wrong = await call(o.method, url + query, tokenB, body)
        if (wrong.status !== 404) problems.push(`${o.method} ${o.path} with the wrong tenant's token: ${wrong.status} ${JSON.stringify(wrong.body).slice(0, 200)}`)
        const right = await call(o.method, url + query, tokenA, body)
        const want = ok[o.id]
        if (want ? !want.includes(right.status) : right.status >= 300) problems.push(`${o.method} ${o.path} with the right token: ${right.status} ${JSON.stringify(right.body).slice(0, 300)}`)
      } else if (operatorOnly(o.path)) {
        const tenantToken = await call(o.method, url + query, tokenA, body)
        if (tenantToken.status !== 403) problems.push(`${o.method} ${o.path} with a tenant token: ${tenantToken.status}`)
        const operator = await call(o.method, url + query, opSession, body)
        const want = ok[o.id] ?? (/\{(nodeId|moveId)\}/.test(o.path) && o.method !== 'GET' ? [404] : /\{(nodeId|moveId|id)\}/.test(o.path) ? [200, 404] : null)
        if (want ? !want.includes(operator.status) : operator.status >= 300) problems.push(`${o.method} ${o.path} as operator: ${operator.status} ${JSON.stringify(operator.body).slice(0, 300)}`)
      } else {
        // Not scoped to a tenant (me, tenants, audit, auth): a token sees only its own.
        const res = await call(o.method, url + query, tokenA, body)
        if (res.status >= 500) problems.push(`${o.method} ${o.path}: ${res.status}`)
      }
      if (o.id === 'apps-scale' || o.id === 'apps-update' || o.id === 'apps-rollback') await waitFor('the app to be writable', async () => (await call('GET', fill('/tenants/{tenantId}/apps/{appId}'), tokenA)).status === 200)
    }
    expect(problems).toEqual([])
    // The wrong tenant cannot read A's audit trail nor export it; the tenant list shows only its own.
    expect((await call('GET', `/audit?tenantId=${tA}`, tokenB)).status).toBe(404)
    expect((await call('GET', '/tenants', tokenB)).body.map((t: { id: string }) => t.id)).toEqual([tB])
  }, 300_000)
})
