import { EventEmitter } from 'node:events'
import type pg from 'pg'
import { z } from 'zod'
import type { Clock } from '../clock'

/**
 * Change notifications between BFF processes: PostgreSQL LISTEN/NOTIFY on one channel.
 * Messages are hints to re-read state, never the state itself, so a lost one is healed
 * by the periodic resync. A change is a discriminated union: a misspelt kind is a type
 * error, not a silent no-op.
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
  /** A drain started. */
  z.object({ kind: z.literal('drain'), nodeId: id }),
  /** New log lines or metric samples of an app. */
  z.object({ kind: z.literal('logs'), appId: id }),
  z.object({ kind: z.literal('metrics'), appId: id }),
])
export type TChange = z.infer<typeof ZChange>
export type TChangeKind = TChange['kind']

/** One key per distinct change, for coalescing. */
export const changeKey = (c: TChange): string => JSON.stringify(c)

const CHANNEL = 'alveary_changes'

export interface ChangeBus {
  publish(change: TChange): void
  subscribe(listener: (change: TChange) => void): () => void
  /** Listening for other processes' changes right now (false while reconnecting). */
  readonly connected: boolean
  close(): Promise<void>
}

export async function createChangeBus(pool: pg.Pool, { clock, onError = () => {} }: { clock: Clock; onError?(err: Error): void }): Promise<ChangeBus> {
  const local = new EventEmitter()
  local.setMaxListeners(0)
  let closed = false
  let listener: pg.PoolClient | null = null

  const connect = async () => {
    const client = await pool.connect()
    client.on('notification', (msg) => {
      if (!msg.payload) return
      try {
        const parsed = ZChange.safeParse(JSON.parse(msg.payload))
        if (parsed.success) local.emit('change', parsed.data)
      } catch {
        /* not ours */
      }
    })
    client.on('error', (err) => {
      onError(err)
      client.release(true)
      listener = null
      if (!closed) clock.setTimer(() => void connect().catch(onError), 1000)
    })
    await client.query(`LISTEN ${CHANNEL}`)
    listener = client
  }
  await connect()

  // Coalesce identical notifications issued within one tick.
  let pending = new Map<string, TChange>()
  let scheduled = false
  const flush = () => {
    scheduled = false
    const batch = [...pending.values()]
    pending = new Map()
    for (const c of batch) pool.query('SELECT pg_notify($1, $2)', [CHANNEL, JSON.stringify(c)]).catch(onError)
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
    async close() {
      closed = true
      if (scheduled) flush()
      if (listener) {
        await listener.query(`UNLISTEN ${CHANNEL}`).catch(() => {})
        listener.release()
      }
    },
  }
}
