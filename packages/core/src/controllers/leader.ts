import type pg from 'pg'
import type { Clock } from '../clock'

const LEADER_KEY = 72707371

/**
 * Leader lease on a session advisory lock: the process holding it runs the control
 * loops. If its connection dies, PostgreSQL releases the lock and another BFF takes over;
 * the holder asks its connection something every `checkMs`, so a connection cut without
 * an error (a dead network) ends its leadership too instead of leaving two leaders.
 */
export function runAsLeader(pool: pg.Pool, opts: { clock: Clock; retryMs: number; checkMs?: number; onLeading(): () => Promise<void>; onError(err: Error): void }) {
  const checkMs = opts.checkMs ?? 5_000
  let client: pg.PoolClient | null = null
  let stopLeading: (() => Promise<void>) | null = null
  let cancelRetry: (() => void) | null = null
  let cancelCheck: (() => void) | null = null
  let stopped = false

  /** The lock's connection failed: whoever leads stops, and the next attempt is scheduled. */
  const fail = (c: pg.PoolClient, err: Error) => {
    if (client !== c) return
    opts.onError(err)
    cancelCheck?.()
    cancelCheck = null
    c.release(true)
    client = null
    void lose().then(() => schedule())
  }
  const check = (c: pg.PoolClient) => {
    cancelCheck = opts.clock.setTimer(() => {
      let cancelTimeout = () => {}
      const timedOut = new Promise<never>((_, reject) => {
        cancelTimeout = opts.clock.setTimer(() => reject(new Error('the leader lock connection stopped answering')), Math.min(3_000, checkMs))
      })
      Promise.race([c.query('SELECT 1'), timedOut])
        .finally(cancelTimeout)
        .then(() => client === c && check(c), (err: Error) => fail(c, err))
    }, checkMs)
  }

  const lose = async () => {
    const stop = stopLeading
    stopLeading = null
    await stop?.()
  }

  const attempt = async () => {
    cancelRetry = null
    if (stopped) return
    try {
      const c = (client ??= await pool.connect())
      const onError = (err: Error) => fail(c, err)
      c.on('error', onError)
      const { rows } = await c.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [LEADER_KEY])
      if (rows[0]?.ok) {
        stopLeading = opts.onLeading()
        check(c)
        return
      }
      // Back to the pool, which hands it to others: without our listener.
      c.off('error', onError)
      c.release()
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
      cancelCheck?.()
      await lose()
      if (client) {
        await client.query('SELECT pg_advisory_unlock($1)', [LEADER_KEY]).catch(() => {})
        client.release()
        client = null
      }
    },
  }
}
