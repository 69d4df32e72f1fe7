import type pg from 'pg'
import type { Clock } from '../clock'

const LEADER_KEY = 72707371

/**
 * Leader lease on a session advisory lock: the process holding it runs the control
 * loops. If its connection dies, PostgreSQL releases the lock and another BFF takes over.
 */
export function runAsLeader(pool: pg.Pool, opts: { clock: Clock; retryMs: number; onLeading(): () => Promise<void>; onError(err: Error): void }) {
  let client: pg.PoolClient | null = null
  let stopLeading: (() => Promise<void>) | null = null
  let cancelRetry: (() => void) | null = null
  let stopped = false

  const lose = async () => {
    const stop = stopLeading
    stopLeading = null
    await stop?.()
  }

  const attempt = async () => {
    cancelRetry = null
    if (stopped) return
    try {
      client ??= await pool.connect()
      client.on('error', (err) => {
        opts.onError(err)
        client?.release(true)
        client = null
        void lose().then(() => schedule())
      })
      const { rows } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [LEADER_KEY])
      if (rows[0]?.ok) {
        stopLeading = opts.onLeading()
        return
      }
      client.release()
      client = null
    } catch (err) {
      opts.onError(err as Error)
      client?.release(true)
      client = null
    }
    schedule()
  }
  const schedule = () => {
    if (!stopped && !cancelRetry) cancelRetry = opts.clock.setTimer(() => void attempt(), opts.retryMs)
  }
  void attempt()

  return {
    get leading() {
      return stopLeading !== null
    },
    async stop() {
      stopped = true
      cancelRetry?.()
      await lose()
      if (client) {
        await client.query('SELECT pg_advisory_unlock($1)', [LEADER_KEY]).catch(() => {})
        client.release()
        client = null
      }
    },
  }
}
