import type { Clock } from '../clock'

/**
 * Group commit: writes added while a flush is in progress (or within maxDelayMs) go to the
 * database together in the next flush. Later values for the same key replace earlier ones.
 * add() resolves when the write is durable, so callers can publish "changed" afterwards.
 */
export function createGroupCommit<K, V>(opts: { clock: Clock; maxDelayMs: number; flush(items: Map<K, V>): Promise<void>; onError(err: Error): void }) {
  let pending = new Map<K, V>()
  let waiters: { resolve(): void; reject(e: Error): void }[] = []
  let cancelTimer: (() => void) | null = null
  let flushing: Promise<void> | null = null

  const run = async () => {
    cancelTimer = null
    if (flushing) return
    const items = pending
    const w = waiters
    pending = new Map()
    waiters = []
    if (!items.size) return w.forEach((x) => x.resolve())
    flushing = opts.flush(items).then(
      () => w.forEach((x) => x.resolve()),
      (err: Error) => {
        opts.onError(err)
        w.forEach((x) => x.reject(err))
      },
    )
    await flushing
    flushing = null
    if (pending.size) schedule()
  }
  const schedule = () => {
    if (!cancelTimer && !flushing) cancelTimer = opts.clock.setTimer(() => void run(), opts.maxDelayMs)
  }

  return {
    add(key: K, value: V): Promise<void> {
      pending.set(key, value)
      const p = new Promise<void>((resolve, reject) => waiters.push({ resolve, reject }))
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
