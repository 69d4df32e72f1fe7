import { randomUUID } from 'node:crypto'
import path from 'node:path'
import { applyMigrations, createHotStore, createNodeLeases, HOT_SCHEMA, openDatabase, RejectedRow, systemClock, type Database } from '@alveary/core'
import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { defaultMigrationsDir } from '../src/config'
import { freshDatabase } from './harness'

// The group commit on real PostgreSQL: a row the database refuses fails only its own writer.
let db: Awaited<ReturnType<typeof freshDatabase>>
let database: Database
const errors: Error[] = []

beforeAll(async () => {
  db = await freshDatabase()
  database = openDatabase(db.url)
  await applyMigrations(database.hotPool, path.join(defaultMigrationsDir, '../hot/migrations'), { schema: HOT_SCHEMA })
})
afterAll(async () => {
  await database?.close()
  await db?.drop()
})

const store = () => createHotStore({ hot: database.hot, hotPool: database.hotPool, clock: systemClock, flushMs: 20, onError: (e) => errors.push(e) })
const leasesOn = (d: Database) => createNodeLeases({ hotPool: d.hotPool, clock: systemClock, flushMs: 20, onError: (e) => errors.push(e), onNodesRevived: () => {} })
const beat = (nodeId: string, sessionId: string, cpuUsedMillis: number) => ({ nodeId, sessionId, cpuUsedMillis, memoryUsedMb: 1, appliedGeneration: 1 })

describe('node sessions', () => {
  it('give a node to one connection at a time: the holder\'s heartbeats land, a fenced connection\'s do not', async () => {
    const leases = leasesOn(database)
    const node = randomUUID()
    const [a, b] = [randomUUID(), randomUUID()]
    const run = randomUUID()
    expect(await leases.claim(node, { sessionId: a, runId: run, staleMs: 60_000 })).toEqual({ claimed: true, revived: false })
    expect(await leases.claim(node, { sessionId: b, runId: randomUUID(), staleMs: 60_000 })).toMatchObject({ claimed: false })
    expect(await leases.heartbeat(beat(node, b, 1))).toBe('fenced')
    expect(await leases.heartbeat(beat(node, a, 1))).toBe('ok')
    // The same agent run reconnecting takes over at once; the old connection is fenced.
    expect(await leases.claim(node, { sessionId: b, runId: run, staleMs: 60_000 })).toMatchObject({ claimed: true })
    expect(await leases.heartbeat(beat(node, a, 2))).toBe('fenced')
    // A release by a connection that no longer holds the node frees nothing.
    await leases.release(node, a)
    expect(await leases.claim(node, { sessionId: randomUUID(), runId: null, staleMs: 60_000 })).toMatchObject({ claimed: false })
    await leases.release(node, b)
    expect(await leases.claim(node, { sessionId: randomUUID(), runId: null, staleMs: 60_000 })).toMatchObject({ claimed: true })
  })
  it('are claimed for hellos arriving together in one statement, two claims of one node acting as if one came after the other; releases together in one', async () => {
    const statements: string[] = []
    const counted = { query: (text: string, values: unknown[]) => (statements.push(text.trim().split(/\s+/).slice(0, 2).join(' ')), database.hotPool.query(text, values)) } as unknown as pg.Pool
    const leases = createNodeLeases({ hotPool: counted, clock: systemClock, claimFlushMs: 20, onError: (e) => errors.push(e), onNodesRevived: () => {} })
    const nodes = Array.from({ length: 50 }, () => randomUUID())
    const sessions = nodes.map(() => randomUUID())
    const [x, run] = [randomUUID(), randomUUID()]
    const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()]
    const claim = (node: string, sessionId: string, runId: string | null) => leases.claim(node, { sessionId, runId, staleMs: 60_000 })
    const [forX, all] = await Promise.all([
      // One node three times in the batch: the first claims it, another run is refused, the same run takes over.
      Promise.all([claim(x, a, run), claim(x, b, randomUUID()), claim(x, c, run)]),
      Promise.all(nodes.map((n, i) => claim(n, sessions[i]!, null))),
    ])
    expect(forX.map((r) => r.claimed)).toEqual([true, false, true])
    expect(all.every((r) => r.claimed)).toBe(true)
    // One statement per round: every node once, then x's second and third claims.
    expect(statements).toEqual(['WITH v', 'WITH v', 'WITH v'])
    expect(await leases.heartbeat(beat(x, a, 1))).toBe('fenced')
    expect(await leases.heartbeat(beat(x, c, 1))).toBe('ok')
    // Another agent on a node claimed a moment ago: refused, with when the holder was last heard.
    const refused = await claim(nodes[0]!, randomUUID(), null)
    expect(refused).toMatchObject({ claimed: false })

    statements.length = 0
    await Promise.all(nodes.map((n, i) => leases.release(n, sessions[i]!)))
    expect(statements.filter((s) => s.startsWith('UPDATE'))).toHaveLength(1)
    expect((await Promise.all(nodes.map((n) => claim(n, randomUUID(), null)))).every((r) => r.claimed)).toBe(true)
  })

  it('write a beat that acknowledges a newer desired state at once; a beat restating its generation waits for the group commit', async () => {
    const hot = store()
    // Coalescing for a minute: only an urgent beat lands while the test runs.
    const leases = createNodeLeases({ hotPool: database.hotPool, clock: systemClock, flushMs: 60_000, onError: (e) => errors.push(e), onNodesRevived: () => {} })
    const node = randomUUID()
    const session = randomUUID()
    await leases.claim(node, { sessionId: session, runId: null, staleMs: 60_000 })
    const at = (appliedGeneration: number) => ({ ...beat(node, session, 1), appliedGeneration })
    const first = leases.heartbeat(at(1))
    await leases.flush()
    expect(await first).toBe('ok')
    const within = <T>(p: Promise<T>, ms: number) => Promise.race([p.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), ms))])
    expect(await within(leases.heartbeat(at(2)), 10_000)).toBe(true)
    expect((await hot.nodeStatuses([node]))[0]?.appliedGeneration).toBe(2)
    let restated = false
    const same = leases.heartbeat({ ...at(2), cpuUsedMillis: 7 }).then(() => (restated = true))
    expect((await hot.nodeStatuses([node]))[0]?.cpuUsedMillis).toBe(1)
    expect(restated).toBe(false)
    await leases.flush()
    await same
    expect((await hot.nodeStatuses([node]))[0]?.cpuUsedMillis).toBe(7)
    await leases.release(node, session)
  })
})

describe('group commit isolation', () => {
  it('writes the good heartbeats of a batch that holds an out-of-range one, and rejects only that one', async () => {
    const hot = store()
    const leases = leasesOn(database)
    const ids = [randomUUID(), randomUUID(), randomUUID()]
    const sessions = ids.map(() => randomUUID())
    for (const [i, id] of ids.entries()) await leases.claim(id, { sessionId: sessions[i]!, runId: null, staleMs: 10_000 })
    const results = await Promise.allSettled([
      leases.heartbeat(beat(ids[0]!, sessions[0]!, 10)),
      leases.heartbeat(beat(ids[1]!, sessions[1]!, 2 ** 31)),
      leases.heartbeat(beat(ids[2]!, sessions[2]!, 30)),
    ])
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled'])
    expect(results.map((r) => (r.status === 'fulfilled' ? r.value : null))).toEqual(['ok', null, 'ok'])
    expect((results[1] as PromiseRejectedResult).reason).toBeInstanceOf(RejectedRow)
    const rows = new Map((await hot.nodeStatuses(ids)).map((s) => [s.nodeId, s.cpuUsedMillis]))
    expect([rows.get(ids[0]!), rows.get(ids[1]!), rows.get(ids[2]!)]).toEqual([10, 0, 30])
  })

  it('rejects a status row with a NUL in its message or its last exit and writes the rest of the batch', async () => {
    const hot = store()
    const node = randomUUID()
    const lastExit = (message: string) => ({ reason: 'oomKilled' as const, exitCode: 137, signal: 'SIGKILL', message, at: '2026-12-03T10:00:00.000Z' })
    const row = (message: string, exit = lastExit('out of memory')) => ({ instanceId: randomUUID(), tenantId: randomUUID(), nodeId: node, state: 'running' as const, pid: 1, restarts: 1, startedAt: null, exitCode: null, message, lastExit: exit, generation: 1 })
    const good = [row('fine'), row('also fine')]
    const bad = [row('bad\u0000byte'), row('fine', lastExit('bad\u0000byte'))]
    const results = await Promise.allSettled([hot.reportStatuses([good[0]!]), hot.reportStatuses([bad[0]!]), hot.reportStatuses([bad[1]!]), hot.reportStatuses([good[1]!])])
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'fulfilled'])
    const written = await hot.statusesOf([...good, ...bad].map((r) => r.instanceId))
    expect([...written.keys()].sort()).toEqual(good.map((r) => r.instanceId).sort())
    expect(written.get(good[0]!.instanceId)).toMatchObject({ lastExitReason: 'oomKilled', lastExitCode: 137, lastExitSignal: 'SIGKILL', lastExitMessage: 'out of memory', lastExitAt: new Date('2026-12-03T10:00:00.000Z') })
  })

  it('fails every writer (not as rejected rows) when the store itself is unreachable', async () => {
    const broken = openDatabase(db.url.replace(/:\d+\//, ':1/'))
    try {
      const leases = leasesOn(broken)
      const results = await Promise.allSettled([randomUUID(), randomUUID()].map((id) => leases.heartbeat(beat(id, randomUUID(), 1))))
      expect(results.every((r) => r.status === 'rejected' && !(r.reason instanceof RejectedRow))).toBe(true)
    } finally {
      await broken.close()
    }
  })
})
