import { EventEmitter } from 'node:events'
import type pg from 'pg'
import { z } from 'zod'

/**
 * Change notifications between BFF processes: PostgreSQL LISTEN/NOTIFY on one channel.
 * Topics: `tenant:<id>` (apps, instances, members of a tenant), `fleet` (nodes),
 * `node:<id>` (desired state of a node changed), `app:<id>` (reconcile this app).
 * Messages are hints to re-read state, never the state itself, so a lost one is healed
 * by the periodic resync.
 */
export const ZChange = z.object({ topic: z.string().max(100), kind: z.string().max(50), id: z.string().max(100).optional() })
export type TChange = z.infer<typeof ZChange>

const CHANNEL = 'alveary_changes'

export interface ChangeBus {
  publish(change: TChange): void
  subscribe(listener: (change: TChange) => void): () => void
  close(): Promise<void>
}

export async function createChangeBus(pool: pg.Pool, onError: (err: Error) => void = () => {}): Promise<ChangeBus> {
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
      if (!closed) setTimeout(() => void connect().catch(onError), 1000)
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
      pending.set(`${change.topic}|${change.kind}|${change.id ?? ''}`, change)
      if (!scheduled) {
        scheduled = true
        setImmediate(flush)
      }
    },
    subscribe(fn) {
      local.on('change', fn)
      return () => local.off('change', fn)
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
