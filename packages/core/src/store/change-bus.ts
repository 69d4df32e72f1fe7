import { randomUUID } from 'node:crypto'
import { EventEmitter } from 'node:events'
import pg from 'pg'
import { z } from 'zod'
import { backoffMs } from '../backoff'
import type { Clock } from '../clock'

/**
 * Change notifications: delivered at once inside this process, and to the other BFF
 * processes through PostgreSQL LISTEN/NOTIFY on one channel. Messages are hints to re-read
 * state, never the state itself. A change is a discriminated union: a misspelt kind is a
 * type error, not a silent no-op.
 *
 * Outages: the LISTEN connection is checked periodically and reconnected with backoff for
 * as long as the process lives; after it was down, every subscriber gets `resync` (hints
 * from other processes may have been lost: re-read everything). A process whose own
 * notifications failed sends `resync` to the others once it can.
 */
const id = z.string().uuid()
export const ZChange = z.discriminatedUnion('kind', [
  /** Something the console shows for one tenant changed (apps, instances, members, load balancers, networks, the tenant itself). */
  z.object({ kind: z.literal('tenant'), tenantId: id, what: z.enum(['app', 'instances', 'member', 'tenant', 'lb', 'network']), id: id.optional() }),
  /** The list of tenants changed (operators' views). */
  z.object({ kind: z.literal('tenants'), tenantId: id }),
  /** Nodes, their instances, heartbeats or join tokens changed (operators' views). */
  z.object({ kind: z.literal('fleet'), what: z.enum(['node', 'instances', 'heartbeat', 'jointoken']), nodeId: id.optional() }),
  /** The desired state of a node changed: push it to its agent. */
  z.object({ kind: z.literal('node-desired'), nodeId: id }),
  /** The node's credential was revoked (re-key): its live connection must end. */
  z.object({ kind: z.literal('node-revoked'), nodeId: id }),
  /** Reconcile this app (replicas, rollouts). */
  z.object({ kind: z.literal('app'), appId: id }),
  /** A node's free capacity changed: the scheduler refreshes it and retries parked work. */
  z.object({ kind: z.literal('capacity'), nodeId: id }),
  /** Instances of this app changed state or readiness: load balancers in front of it update their backends. */
  z.object({ kind: z.literal('lb-backends'), appId: id }),
  /** The scheduler's time-to-placement samples were written (operators' scheduler page). */
  z.object({ kind: z.literal('scheduler') }),
  /** A drain started. */
  z.object({ kind: z.literal('drain'), nodeId: id }),
  /** New log lines or metric samples of an app. */
  z.object({ kind: z.literal('logs'), appId: id }),
  z.object({ kind: z.literal('metrics'), appId: id }),
  /** One-shot commands wait for this node's agent: the BFF holding its socket delivers them. */
  z.object({ kind: z.literal('agent-command'), nodeId: id }),
  /** A move progressed (its controller, the ops view). */
  z.object({ kind: z.literal('move'), moveId: id }),
  /** Hints may have been lost (the bus was down): re-read everything. */
  z.object({ kind: z.literal('resync') }),
])
export type TChange = z.infer<typeof ZChange>
export type TChangeKind = TChange['kind']

/** One key per distinct change, for coalescing. */
export const changeKey = (c: TChange): string => JSON.stringify(c)

const CHANNEL = 'alveary_changes'
/** PostgreSQL's NOTIFY payload limit is 8000 bytes; changes are packed into payloads below it. */
const MAX_PAYLOAD = 7_500
const ZPayload = z.object({ o: z.string().max(64), c: z.array(z.unknown()).max(1_000) })

export interface BusHealth {
  /** Listening for other processes' changes right now. */
  connected: boolean
  /** Since when it is connected, or down. */
  since: Date
  /** Reconnect attempts that failed since it went down. */
  failedAttempts: number
  /** Times it came back after being down. */
  reconnects: number
  lastError: string | null
}

export interface ChangeBus {
  publish(change: TChange): void
  subscribe(listener: (change: TChange) => void): () => void
  /** Listening for other processes' changes right now (false while reconnecting). */
  readonly connected: boolean
  health(): BusHealth
  close(): Promise<void>
}

export interface ChangeBusOptions {
  clock: Clock
  onError?(err: Error): void
  /** How often the LISTEN connection is checked (a cut network may not close it). */
  checkEveryMs?: number
  retry?: { baseMs: number; capMs: number }
}

export async function createChangeBus(pool: pg.Pool, { clock, onError = () => {}, checkEveryMs = 10_000, retry = { baseMs: 250, capMs: 5_000 } }: ChangeBusOptions): Promise<ChangeBus> {
  const origin = randomUUID()
  const local = new EventEmitter()
  local.setMaxListeners(0)
  const deliver = (c: TChange) => local.emit('change', c)
  let closed = false
  let listener: pg.Client | null = null
  let cancelRetry: (() => void) | null = null
  let cancelCheck: (() => void) | null = null
  /** Our own notifications failed: the others must resync once we can reach them. */
  let owed = false
  const health: BusHealth = { connected: false, since: clock.now(), failedAttempts: 0, reconnects: 0, lastError: null }

  const receive = (payload: string | undefined) => {
    if (!payload) return
    let msg: z.infer<typeof ZPayload>
    try {
      msg = ZPayload.parse(JSON.parse(payload))
    } catch {
      return // not ours
    }
    if (msg.o === origin) return // delivered locally already
    for (const raw of msg.c) {
      const parsed = ZChange.safeParse(raw)
      if (parsed.success) deliver(parsed.data)
    }
  }

  const lost = (c: pg.Client, err: Error) => {
    if (listener !== c) return
    listener = null
    cancelCheck?.()
    cancelCheck = null
    void c.end().catch(() => {})
    health.connected = false
    health.since = clock.now()
    health.lastError = err.message
    onError(err)
    scheduleRetry()
  }

  const connect = async () => {
    const c = new pg.Client({ ...pool.options, keepAlive: true, connectionTimeoutMillis: 10_000 })
    c.on('error', (err) => lost(c, err))
    c.on('end', () => lost(c, new Error('the change bus connection ended')))
    c.on('notification', (msg) => receive(msg.payload))
    try {
      await c.connect()
      await c.query(`LISTEN ${CHANNEL}`)
    } catch (err) {
      void c.end().catch(() => {})
      throw err
    }
    if (closed) return void c.end().catch(() => {})
    listener = c
    health.connected = true
    health.since = clock.now()
    health.failedAttempts = 0
    // A cut network can leave the socket open without an error: ask it something now and then.
    const check = () => {
      cancelCheck = clock.setTimer(() => {
        let cancelTimeout = () => {}
        const timedOut = new Promise<never>((_, reject) => {
          cancelTimeout = clock.setTimer(() => reject(new Error('the change bus connection stopped answering')), Math.min(5_000, checkEveryMs))
        })
        Promise.race([c.query('SELECT 1'), timedOut])
          .finally(cancelTimeout)
          .then(() => listener === c && check(), (err: Error) => lost(c, err))
      }, checkEveryMs)
    }
    check()
  }

  const scheduleRetry = () => {
    if (closed || cancelRetry) return
    cancelRetry = clock.setTimer(() => {
      cancelRetry = null
      connect().then(
        () => {
          if (!listener) return
          health.reconnects++
          // What others said while we were away is lost: everyone here re-reads everything.
          deliver({ kind: 'resync' })
          if (owed) notify([{ kind: 'resync' }])
        },
        (err: Error) => {
          health.failedAttempts++
          health.lastError = err.message
          scheduleRetry()
        },
      )
    }, backoffMs(health.failedAttempts, retry))
  }

  const notify = (changes: TChange[]) => {
    const payloads: string[] = []
    let batch: string[] = []
    let size = 0
    for (const c of changes) {
      const json = JSON.stringify(c)
      if (batch.length && size + json.length > MAX_PAYLOAD) {
        payloads.push(batch.join(','))
        batch = []
        size = 0
      }
      batch.push(json)
      size += json.length + 1
    }
    if (batch.length) payloads.push(batch.join(','))
    for (const p of payloads) {
      pool.query('SELECT pg_notify($1, $2)', [CHANNEL, `{"o":${JSON.stringify(origin)},"c":[${p}]}`]).then(
        () => {
          if (!owed) return
          owed = false
          notify([{ kind: 'resync' }])
        },
        (err: Error) => {
          owed = true
          onError(err)
        },
      )
    }
  }

  await connect()

  // Identical changes published within one tick go out once.
  let pending = new Map<string, TChange>()
  let scheduled = false
  const flush = () => {
    scheduled = false
    const batch = [...pending.values()]
    pending = new Map()
    batch.forEach(deliver)
    notify(batch)
  }

  return {
    publish(change) {
      pending.set(changeKey(change), change)
      if (!scheduled) {
        scheduled = true
        setImmediate(flush)
      }
    },
    subscribe(fn) {
      local.on('change', fn)
      return () => local.off('change', fn)
    },
    get connected() {
      return listener !== null
    },
    health: () => ({ ...health }),
    async close() {
      closed = true
      cancelRetry?.()
      cancelCheck?.()
      if (scheduled) flush()
      const c = listener
      listener = null
      if (c) await c.end().catch(() => {})
    },
  }
}
