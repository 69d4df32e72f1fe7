import { CoreError } from '@alveary/core'
import type { TDesired } from '@alveary/core/protocol'

interface Waiter {
  resolve(d: TDesired): void
  reject(err: Error): void
}

/**
 * Reads desired states for the gateway's connections in batches: the requests made while
 * the batches in flight are read join the next one, so a fleet reconnecting after a restart
 * or a change fanned out to every node costs a few queries per batch, not a few per node.
 * A request never gets a state read before it was made (it waits for a batch that starts later).
 */
export function createDesiredLoader(opts: { loadMany(nodeIds: string[]): Promise<Map<string, TDesired>>; maxBatch: number; concurrency: number }) {
  const waiting = new Map<string, Waiter[]>()
  let inFlight = 0
  let scheduled = false

  const run = async (batch: Map<string, Waiter[]>) => {
    try {
      const found = await opts.loadMany([...batch.keys()])
      for (const [id, ws] of batch) {
        const d = found.get(id)
        for (const w of ws) d ? w.resolve(d) : w.reject(new CoreError('NOT_FOUND', 'Node not found'))
      }
    } catch (err) {
      for (const ws of batch.values()) for (const w of ws) w.reject(err as Error)
    }
  }
  const pump = () => {
    scheduled = false
    while (inFlight < opts.concurrency && waiting.size) {
      const batch = new Map<string, Waiter[]>()
      for (const [id, ws] of waiting) {
        if (batch.size >= opts.maxBatch) break
        batch.set(id, ws)
        waiting.delete(id)
      }
      inFlight++
      void run(batch).finally(() => {
        inFlight--
        pump()
      })
    }
  }

  return {
    load(nodeId: string): Promise<TDesired> {
      return new Promise((resolve, reject) => {
        const ws = waiting.get(nodeId)
        if (ws) ws.push({ resolve, reject })
        else waiting.set(nodeId, [{ resolve, reject }])
        // Requests made in the same turn (a bus notification names up to ~100 nodes) share a batch.
        if (!scheduled) {
          scheduled = true
          setImmediate(pump)
        }
      })
    },
  }
}
