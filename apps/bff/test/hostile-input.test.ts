import { Writable } from 'node:stream'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { addMember, callerFor, OPERATOR, startTestBff, type TestBff } from './harness'
import { LEAK, sse, trpcGet } from './http'
import { hostileEnvelopes, sample } from './hostile'
import { routerProcedures, type ProcedureInfo } from './router-schemas'

/**
 * Hostile values to EVERY procedure's input, over real HTTP (issue 7 §2). The procedures and
 * their input schemas come from the router itself. Each request is answered below 500, and
 * no answer (JSON or SSE) carries a stack, a server path or database text.
 */
let bff: TestBff
let cookie: string
// The server's error log, to show with a failure (by request id).
const serverLog: string[] = []
const ids: Record<string, string> = {}

async function session() {
  // Straight through core: the hostile sign-ins below may have throttled this address.
  const { token } = await bff.core.auth.login(OPERATOR.email, OPERATOR.password, { address: 'hostile-test-setup' })
  cookie = `alveary_session=${token}`
}

beforeAll(async () => {
  bff = await startTestBff({}, { log: pino({ level: 'error' }, new Writable({ write: (chunk, _enc, cb) => (serverLog.push(String(chunk)), cb()) })) })
  const op = await callerFor(bff, OPERATOR.email, OPERATOR.password)
  ids.tenantId = (await op.tenants.create({ slug: 'target', name: 'Target' })).id
  await addMember(bff, op, ids.tenantId, { email: 'owner@target.test', name: 'Owner', password: 'owner-password', role: 'owner' })
  const owner = await callerFor(bff, 'owner@target.test', 'owner-password')
  // The operator joins as an owner (invited by the owner), so every procedure is in reach.
  const { invitation } = await owner.invitations.create({ tenantId: ids.tenantId, email: OPERATOR.email, role: 'owner' })
  await (await callerFor(bff, OPERATOR.email, OPERATOR.password)).invitations.accept({ id: invitation.id })
  ids.userId = (await addMember(bff, owner, ids.tenantId, { email: 'victim@target.test', name: 'Victim', password: 'victim-password', role: 'viewer' })).userId
  ids.appId = (await owner.apps.create({ tenantId: ids.tenantId, name: 'app', replicas: 0, spec: { command: 'node', cpuMillis: 10, memoryMb: 16 } })).id
  ids.id = (await owner.invitations.create({ tenantId: ids.tenantId, email: 'someone@target.test', role: 'viewer' })).invitation.id
  await session()
})
afterAll(async () => {
  await bff?.stop()
  await bff?.dropDatabase()
})

// Reads first, then writes; the ones that end things (logout, delete, remove, revoke) last.
const rank = (p: ProcedureInfo) => (p.type === 'mutation' ? 2 : 0) + (/logout|delete|remove|revoke|decline/.test(p.path) ? 1 : 0)

async function pool<T>(items: T[], n: number, fn: (t: T) => Promise<void>) {
  let next = 0
  await Promise.all(Array.from({ length: n }, async () => {
    while (next < items.length) await fn(items[next++]!)
  }))
}

describe('hostile input', () => {
  it('never answers 5xx nor leaks internals, for any procedure', async () => {
    const procs = routerProcedures().sort((a, b) => rank(a) - rank(b))
    const failures: string[] = []
    const counts = { requests: 0, procedures: 0 }
    for (const proc of procs) {
      counts.procedures++
      const base = proc.input ? sample(proc.input, '', ids) : undefined
      const cases = hostileEnvelopes(base)
      const t0 = Date.now()
      // Writes fewer at once: several valid updates of one app queue on its row lock.
      await pool(cases, proc.type === 'mutation' ? 4 : 8, async ({ what, envelope }) => {
        const label = `${proc.path} [${what}]`
        const body = JSON.stringify(envelope)
        counts.requests++
        if (proc.type === 'mutation') {
          const res = await fetch(`${bff.url}/trpc/${proc.path}`, { method: 'POST', headers: { 'content-type': 'application/json', cookie }, body })
          const text = await res.text()
          if (res.status >= 500) failures.push(`${label}: HTTP ${res.status} ${text.slice(0, 300)}`)
          if (LEAK.test(text)) failures.push(`${label}: leaks ${text.slice(0, 300)}`)
        } else if (proc.type === 'query') {
          const res = await fetch(`${bff.url}/trpc/${proc.path}?input=${encodeURIComponent(body)}`, { headers: { cookie } })
          const text = await res.text()
          if (res.status >= 500) failures.push(`${label}: HTTP ${res.status} ${text.slice(0, 300)}`)
          if (LEAK.test(text)) failures.push(`${label}: leaks ${text.slice(0, 300)}`)
        } else {
          const r = await sse(`${bff.url}/trpc/${proc.path}?input=${encodeURIComponent(body)}`, { cookie }, (evs) => evs.some((e) => e.event !== 'connected' && e.event !== 'ping'), 1_500)
          const text = JSON.stringify(r.events)
          if (r.status >= 500 || /"httpStatus":5\d\d/.test(text)) failures.push(`${label}: ${r.status} ${text.slice(0, 300)}`)
          if (LEAK.test(text)) failures.push(`${label}: leaks ${text.slice(0, 300)}`)
        }
      })
      if (process.env.HOSTILE_TIMES) console.log(proc.path, cases.length, Date.now() - t0)
      // Some hostile calls are valid and end the session (auth.logout): sign in again.
      if ((await trpcGet(bff.url, 'auth.me', undefined, { cookie })).status === 401) await session()
    }
    console.log(`hostile input: ${counts.requests} requests to ${counts.procedures} procedures`)
    const logged = (f: string) => serverLog.filter((l) => l.includes(/Request id: ([0-9a-f-]{36})/.exec(f)?.[1] ?? '-none-')).map((l) => l.slice(0, 600))
    expect(failures.map((f) => [f, ...logged(f)].join('\n  log: '))).toEqual([])
    expect(counts.procedures).toBe(routerProcedures().length)
    // Nothing polluted the prototypes of this process (the BFF runs in it).
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    expect(Object.keys(Object.prototype)).toEqual([])
    // The server is still fine.
    expect((await trpcGet(bff.url, 'auth.me', undefined, { cookie })).status).toBe(200)
  }, 900_000) // every mutation also writes its audit row; the machine may be shared
})
