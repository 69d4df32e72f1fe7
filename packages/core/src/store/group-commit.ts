import type { Clock } from '../clock'

/** One row of a group commit was refused by the database for its own values; the others were written. */
export class RejectedRow extends Error {
  override name = 'RejectedRow'
  constructor(readonly reason: string) {
    super(`rejected by the store: ${reason}`)
  }
}

/**
 * PostgreSQL refuses a row for its own values with SQLSTATE class 22 (data exception: out
 * of range, bad encoding) or 23 (integrity constraint). Anything else (connection lost,
 * timeout) is the store's problem, not the row's.
 */
export const isRowError = (err: unknown): boolean => /^2[23]/.test(String((err as { code?: unknown }).code ?? ''))

/**
 * Group commit: writes added while a flush is in progress (or within maxDelayMs) go to the
 * database together in the next flush. Later values for the same key replace earlier ones.
 * add() resolves with what flush() returned for that key once the write is durable, so
 * callers can publish "changed" afterwards.
 *
 * Isolation: when a batch fails because of one row's values, every row is retried on its
 * own; only the rows the database refuses reject (with RejectedRow), the others land. So a
 * writer can never fail other writers' rows.
 */
export function createGroupCommit<K, V, R = void>(opts: {
  maxDelayMs: number
  clock: Clock
  /** Writes the batch; returns a result per key (keys left out resolve with undefined). */
  flush(items: Map<K, V>): Promise<Map<K, R> | void>
  onError(err: Error): void
}) {
  type Waiter = { resolve(r: R | undefined): void; reject(e: Error): void }
  let pending = new Map<K, V>()
  let waiters = new Map<K, Waiter[]>()
  let cancelTimer: (() => void) | null = null
  let flushing: Promise<void> | null = null
  /** A pending write someone waits on (see add): no coalescing delay for it. */
  let urgent = false

  const settle = (w: Map<K, Waiter[]>, key: K, outcome: { ok: true; value: R | undefined } | { ok: false; err: Error }) => {
    for (const x of w.get(key) ?? []) outcome.ok ? x.resolve(outcome.value) : x.reject(outcome.err)
  }

  const write = async (items: Map<K, V>, w: Map<K, Waiter[]>) => {
    try {
      const results = (await opts.flush(items)) ?? new Map<K, R>()
      for (const key of items.keys()) settle(w, key, { ok: true, value: results.get(key) })
      return
    } catch (err) {
      if (!isRowError(err) || items.size === 1) {
        opts.onError(err as Error)
        const e = isRowError(err) ? new RejectedRow((err as Error).message) : (err as Error)
        for (const key of items.keys()) settle(w, key, { ok: false, err: e })
        return
      }
    }
    // One bad row failed the batch: write each row alone to find it.
    for (const [key, value] of items) await write(new Map([[key, value]]), w)
  }

  const run = async () => {
    cancelTimer = null
    if (flushing) return
    const items = pending
    const w = waiters
    pending = new Map()
    waiters = new Map()
    urgent = false
    if (!items.size) return
    flushing = write(items, w)
    await flushing
    flushing = null
    if (pending.size) schedule()
  }
  const schedule = () => {
    if (flushing || cancelTimer) return
    if (!urgent) return void (cancelTimer = opts.clock.setTimer(() => void run(), opts.maxDelayMs))
    // The next turn, not now: the caller's other writes of this turn join the flush.
    let cancelled = false
    setImmediate(() => cancelled || void run())
    cancelTimer = () => void (cancelled = true)
  }

  return {
    /**
     * `now`: someone waits on this write (a move step on a status report), so it does not
     * wait out maxDelayMs; it still shares its flush with whatever else is pending.
     */
    add(key: K, value: V, o: { now?: boolean } = {}): Promise<R | undefined> {
      pending.set(key, value)
      const p = new Promise<R | undefined>((resolve, reject) => {
        const list = waiters.get(key)
        if (list) list.push({ resolve, reject })
        else waiters.set(key, [{ resolve, reject }])
      })
      if (o.now && !urgent) {
        urgent = true
        cancelTimer?.()
        cancelTimer = null
      }
      schedule()
      return p
    },
    /** Flushes now (shutdown, tests). */
    async drain() {
      cancelTimer?.()
      cancelTimer = null
      while (flushing) await flushing
      await run()
    },
    get size() {
      return pending.size
    },
  }
}
