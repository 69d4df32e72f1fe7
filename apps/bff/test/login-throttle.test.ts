import http from 'node:http'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { startBff } from '../src/bff'
import { ZBffEnv } from '../src/config'
import { addMember, callerFor, OPERATOR, startTestBff, type TestBff } from './harness'

// Every failed sign-in costs a real scrypt; on a busy machine that adds up.
vi.setConfig({ testTimeout: 180_000 })

/**
 * Brute-force protection of password sign-in (issue 7 §3), through real HTTP from real
 * client addresses (127.0.0.x on loopback): per-account and per-address back-off that
 * doubles, 429 with Retry-After, the same answers for unknown e-mails, counters shared by
 * every BFF of one database, and a cap on password hashing at once.
 */
let bff: TestBff
const alice = { email: 'alice@throttle.test', password: 'alice-password' }
const dave = { email: 'dave@throttle.test', password: 'dave-password' }

interface Answer {
  status: number
  retryAfter: number | null
  code: string | null
  message: string
}

/** auth.login from a given loopback address (and optional headers), like a browser would. */
function login(base: string, body: { email: string; password: string }, from = '127.0.0.1', headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const url = new URL(`${base}/trpc/auth.login`)
    const data = JSON.stringify({ json: body })
    const req = http.request(
      { host: url.hostname, port: url.port, path: url.pathname, method: 'POST', localAddress: from, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data), ...headers } },
      (res) => {
        let text = ''
        res.on('data', (d) => (text += d))
        res.on('end', () => {
          const err = res.statusCode === 200 ? null : (JSON.parse(text) as { error: { json: { message: string; data: { code: string } } } }).error.json
          resolve({ status: res.statusCode!, retryAfter: res.headers['retry-after'] ? Number(res.headers['retry-after']) : null, code: err?.data.code ?? null, message: err?.message ?? '' })
        })
      },
    )
    req.on('error', reject)
    req.end(data)
  })
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

beforeAll(async () => {
  bff = await startTestBff({ ALVEARY_LOGIN_ACCOUNT_FAILURES: '3', ALVEARY_LOGIN_ADDRESS_FAILURES: '6', ALVEARY_LOGIN_BACKOFF_BASE_SECONDS: '2' })
  const op = await callerFor(bff, OPERATOR.email, OPERATOR.password)
  const t = await op.tenants.create({ slug: 'throttle', name: 'Throttle' })
  await addMember(bff, op, t.id, { ...alice, name: 'Alice', role: 'owner' })
  const owner = await callerFor(bff, alice.email, alice.password)
  await addMember(bff, owner, t.id, { email: 'carol@throttle.test', password: 'carol-password', name: 'Carol', role: 'viewer' })
  await addMember(bff, owner, t.id, { ...dave, name: 'Dave', role: 'viewer' })
})
afterAll(async () => {
  await bff?.stop()
  await bff?.dropDatabase()
})

describe('per account', () => {
  it('backs off exponentially after a few failures, from any address', async () => {
    const wrong = { email: alice.email, password: 'wrong-password' }
    // Three free failures (from three addresses: the address limit is not what stops them).
    for (const from of ['127.0.0.11', '127.0.0.12', '127.0.0.13']) expect((await login(bff.url, wrong, from)).status).toBe(401)
    const waits: number[] = []
    for (let i = 0; i < 3; i++) {
      expect((await login(bff.url, wrong, `127.0.0.2${i}`)).status).toBe(401) // the failure that starts (or doubles) the wait
      const blocked = await login(bff.url, wrong, `127.0.0.3${i}`)
      expect(blocked).toMatchObject({ status: 429, code: 'TOO_MANY_REQUESTS' })
      expect(blocked.message).toMatch(/Too many failed sign-ins\. Try again in \d+ s\./)
      waits.push(blocked.retryAfter!)
      // Even the right password waits: nothing is checked while the account backs off.
      expect((await login(bff.url, alice, '127.0.0.40')).status).toBe(429)
      if (i < 2) await sleep(blocked.retryAfter! * 1000 + 100)
    }
    expect(waits).toEqual([2, 4, 8])
  })

  it('starts counting afresh after a successful sign-in', async () => {
    const wrong = { email: dave.email, password: 'wrong-password' }
    for (let i = 0; i < 3; i++) expect((await login(bff.url, wrong, '127.0.0.50')).status).toBe(401)
    expect((await login(bff.url, dave, '127.0.0.50')).status).toBe(200)
    for (let i = 0; i < 4; i++) expect((await login(bff.url, wrong, '127.0.0.51')).status).toBe(401)
    expect((await login(bff.url, wrong, '127.0.0.51')).status).toBe(429)
  })

  it('answers an unknown e-mail exactly like a known one (no account oracle)', async () => {
    const run = async (email: string, from: string) => {
      const out: (number | null)[] = []
      for (let i = 0; i < 5; i++) {
        const a = await login(bff.url, { email, password: 'wrong-password' }, from)
        out.push(a.status, a.retryAfter)
      }
      return out
    }
    const known = await run('carol@throttle.test', '127.0.1.1')
    const unknown = await run('nobody@throttle.test', '127.0.1.2')
    expect(unknown).toEqual(known)
    expect(known).toContain(429)
  })
})

describe('per client address', () => {
  it('blocks an address that fails across many accounts, not the others', async () => {
    for (let i = 0; i < 6; i++) expect((await login(bff.url, { email: `spray${i}@throttle.test`, password: 'x' }, '127.0.2.1')).status).toBe(401)
    expect((await login(bff.url, { email: 'spray-last@throttle.test', password: 'x' }, '127.0.2.1')).status).toBe(401)
    const blocked = await login(bff.url, { email: 'operator@test.local', password: OPERATOR.password }, '127.0.2.1')
    expect(blocked.status).toBe(429)
    expect(blocked.retryAfter).toBeGreaterThanOrEqual(1)
    expect((await login(bff.url, { email: 'operator@test.local', password: OPERATOR.password }, '127.0.2.2')).status).toBe(200)
  })

  it('takes the address from X-Forwarded-For only when the peer is a trusted proxy', async () => {
    // Through the console's proxy (loopback is trusted by default): each forwarded client counts apart.
    const via = (client: string) => ({ 'x-forwarded-for': client })
    for (let i = 0; i < 7; i++) await login(bff.url, { email: `xff${i}@throttle.test`, password: 'x' }, '127.0.3.1', via('203.0.113.7'))
    expect((await login(bff.url, { email: 'xff-last@throttle.test', password: 'x' }, '127.0.3.1', via('203.0.113.7'))).status).toBe(429)
    expect((await login(bff.url, { email: 'xff-last@throttle.test', password: 'x' }, '127.0.3.1', via('203.0.113.8'))).status).toBe(401)
    // A BFF that trusts no proxy ignores the header: the socket's address is what counts.
    const strict = await startTestBff({ ALVEARY_TRUST_PROXY: 'none', ALVEARY_LOGIN_ADDRESS_FAILURES: '2' })
    try {
      for (let i = 0; i < 3; i++) await login(strict.url, { email: `s${i}@throttle.test`, password: 'x' }, '127.0.3.2', via(`198.51.100.${i}`))
      expect((await login(strict.url, { email: 's-last@throttle.test', password: 'x' }, '127.0.3.2', via('198.51.100.99'))).status).toBe(429)
    } finally {
      await strict.stop()
      await strict.dropDatabase()
    }
  })
})

describe('shared state and hashing', () => {
  it('is shared by every BFF of one database', async () => {
    const second = await startBff(
      ZBffEnv.parse({ DATABASE_URL: bff.databaseUrl, BFF_PORT: '0', BFF_HOST: '127.0.0.1', ALVEARY_OPERATOR_EMAIL: 'operator@test.local', ALVEARY_OPERATOR_PASSWORD: OPERATOR.password, ALVEARY_LOGIN_ACCOUNT_FAILURES: '3' }),
      { log: pino({ level: 'silent' }), runControlLoops: false },
    )
    try {
      const wrong = { email: 'shared@throttle.test', password: 'x' }
      for (let i = 0; i < 4; i++) expect((await login(bff.url, wrong, `127.0.4.${i + 1}`)).status).toBe(401)
      expect((await login(second.url, wrong, '127.0.4.9')).status).toBe(429)
    } finally {
      await second.stop()
    }
  })

  it('hashes a bounded number of passwords at once and tells the rest to come back', async () => {
    const busy = await startTestBff({ ALVEARY_PASSWORD_HASH_COST: '17', ALVEARY_PASSWORD_HASH_CONCURRENCY: '1', ALVEARY_PASSWORD_HASH_QUEUE: '2', ALVEARY_LOGIN_ADDRESS_FAILURES: '1000' })
    try {
      const answers = await Promise.all(Array.from({ length: 24 }, (_, i) => login(busy.url, { email: `burst${i}@throttle.test`, password: 'x' }, `127.0.5.${i + 1}`)))
      const refused = answers.filter((a) => a.status === 429)
      expect(answers.every((a) => a.status === 401 || a.status === 429)).toBe(true)
      // One hashing and two waiting at most (at the production cost): most of a simultaneous burst is turned away at once.
      expect(refused.length).toBeGreaterThanOrEqual(12)
      for (const a of refused) {
        expect(a.retryAfter).toBe(1)
        expect(a.message).toMatch(/busy checking passwords/)
      }
    } finally {
      await busy.stop()
      await busy.dropDatabase()
    }
  })
})
