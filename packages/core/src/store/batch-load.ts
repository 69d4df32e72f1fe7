/**
 * Reads by key in batches: the loads asked for while the batches in flight are read join
 * the next one, so a fleet reconnecting after a restart (or a change fanned out to every
 * node) costs a few queries per batch, not a few per node. A load never gets a value read
 * before it was asked for (it waits for a batch that starts later). The reads side of
 * group commit (store/group-commit.ts).
 */
export function createBatchLoader<K, V>(opts: {
  /** Reads many keys; keys missing from the result reject with `missing(key)`. */
  loadMany(keys: K[]): Promise<Map<K, V>>
  missing?(key: K): Error
  maxBatch: number
  concurrency: number
}) {
  interface Waiter {
    resolve(v: V): void
    reject(err: Error): void
  }
  const waiting = new Map<K, Waiter[]>()
  let inFlight = 0
  let scheduled = false

  const run = async (batch: Map<K, Waiter[]>) => {
    try {
      const found = await opts.loadMany([...batch.keys()])
      for (const [key, ws] of batch) {
        const has = found.has(key)
        for (const w of ws) has ? w.resolve(found.get(key)!) : w.reject(opts.missing?.(key) ?? new Error(`${String(key)} not found`))
      }
    } catch (err) {
      for (const ws of batch.values()) for (const w of ws) w.reject(err as Error)
    }
  }
  const pump = () => {
    scheduled = false
    while (inFlight < opts.concurrency && waiting.size) {
      const batch = new Map<K, Waiter[]>()
      for (const [key, ws] of waiting) {
        if (batch.size >= opts.maxBatch) break
        batch.set(key, ws)
        waiting.delete(key)
      }
      inFlight++
      void run(batch).finally(() => {
        inFlight--
        pump()
      })
    }
  }

  return {
    load(key: K): Promise<V> {
      return new Promise((resolve, reject) => {
        const ws = waiting.get(key)
        if (ws) ws.push({ resolve, reject })
        else waiting.set(key, [{ resolve, reject }])
        // Loads asked for in the same turn (a bus notification names up to ~100 nodes) share a batch.
        if (!scheduled) {
          scheduled = true
          setImmediate(pump)
        }
      })
    },
  }
}
export type BatchLoader<K, V> = ReturnType<typeof createBatchLoader<K, V>>
