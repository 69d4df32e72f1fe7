import { backoffMs } from '../backoff'
import { every, type Clock } from '../clock'
import type { Scheduler } from '../scheduler/scheduler'
import type { PlacementRequest } from '../scheduler/types'
import type { ChangeBus } from '../store/change-bus'

/**
 * The scheduler during one leadership term: started (retried until the store answers),
 * its node cache refreshed on the bus's node hints (coalesced: while one refresh runs,
 * the next collects every node asked for), fully every 30 s, and after the bus was down
 * (`resync`: NotReady and capacity hints may have been lost), when pending placements
 * are read again too. Returns a function that ends the term.
 */
export function runScheduling(opts: {
  scheduler: Scheduler
  bus: ChangeBus
  clock: Clock
  /** Placement requests waiting in the store. */
  loadPending(): Promise<PlacementRequest[]>
  /** The scheduler is started and takes requests. */
  onReady(): void
  log: { warn(o: object, m?: string): void; error(o: object, m?: string): void }
}): () => Promise<void> {
  const { scheduler: s, bus, clock, log } = opts
  let ended = false
  let ready = false
  let want: Set<string> | 'all' | null = null
  let refreshing: Promise<void> | null = null

  const refreshNodes = (ids?: string[]) => {
    want = !ids || want === 'all' ? 'all' : new Set([...(want ?? []), ...ids])
    if (!ready) return // start() loads every node
    refreshing ??= (async () => {
      while (want && !ended) {
        const w: Set<string> | 'all' = want
        want = null
        await s.refreshNodes(w === 'all' ? undefined : [...w]).catch((err: Error) => log.error({ err: err.message }, 'node refresh failed'))
      }
      refreshing = null
    })()
  }
  const enqueuePending = () =>
    opts.loadPending().then(
      (pending) => s.enqueue(pending),
      (err: Error) => log.error({ err: err.message }, 'reading pending placements failed'),
    )

  const unsubscribe = bus.subscribe((c) => {
    if ((c.kind === 'fleet' && c.what === 'node' && c.nodeId) || c.kind === 'capacity') refreshNodes([c.nodeId!])
    else if (c.kind === 'tenant' && c.what === 'tenant' && ready) {
      // A tenant's trust changed: its waiting requests are read again and parked work retried.
      void enqueuePending().then(() => refreshNodes())
    }
    else if (c.kind === 'resync' && ready) {
      refreshNodes()
      void enqueuePending()
    }
  })

  let cancelRetry: (() => void) | null = null
  let wake: (() => void) | null = null
  const start = async (attempt: number): Promise<void> => {
    try {
      await s.start()
    } catch (err) {
      log.warn({ err: (err as Error).message, attempt }, 'scheduler start failed; retrying')
      if (ended) return
      await new Promise<void>((resolve) => {
        wake = resolve
        cancelRetry = clock.setTimer(resolve, backoffMs(attempt, { baseMs: 500, capMs: 10_000 }))
      })
      return ended ? undefined : start(attempt + 1)
    }
    if (ended) return
    ready = true
    want = null
    opts.onReady()
    await enqueuePending()
  }
  const started = start(0)
  // Full refresh heals any drift between the cache and the stores.
  const stopRefresh = every(clock, 30_000, () => refreshNodes())

  return async () => {
    ended = true
    unsubscribe()
    stopRefresh()
    cancelRetry?.()
    wake?.()
    await started
    await refreshing
  }
}
