/**
 * A keyed work queue with priorities. A key waiting in the queue is queued once (adding it
 * again only raises its priority); a key being processed is re-queued after it finishes,
 * so one key is never processed twice at once; failures retry with capped exponential
 * backoff. Workers run in parallel across keys and always take the most urgent key first.
 */
import type { Clock } from '../clock'

export type Priority = 'critical' | 'high' | 'low'
const RANK: Record<Priority, number> = { critical: 0, high: 1, low: 2 }

export interface WorkQueueOptions {
  workers: number
  /** Backoff timers run on this clock. */
  clock: Clock
  handle(key: string): Promise<void>
  onError?(key: string, err: unknown): void
  baseBackoffMs?: number
  maxBackoffMs?: number
}

export interface WorkQueue {
  add(key: string, priority?: Priority): void
  /** Resolves when nothing is queued or running (tests, shutdown). */
  idle(): Promise<void>
  stop(): Promise<void>
  readonly size: number
}

export function createWorkQueue(opts: WorkQueueOptions): WorkQueue {
  const lanes: string[][] = [[], [], []]
  const queued = new Map<string, number>() // key -> lane it waits in
  const running = new Set<string>()
  const dirty = new Map<string, number>()
  const failures = new Map<string, number>()
  const timers = new Set<() => void>()
  let active = 0
  let stopped = false
  let idleWaiters: (() => void)[] = []

  const waiting = () => lanes.reduce((s, l) => s + l.length, 0)
  const checkIdle = () => {
    if (active === 0 && queued.size === 0) {
      const w = idleWaiters
      idleWaiters = []
      w.forEach((f) => f())
    }
  }

  // Lazy deletion: a key moved to a more urgent lane leaves a stale entry behind.
  const shift = (): string | null => {
    for (let lane = 0; lane < lanes.length; lane++) {
      while (lanes[lane]!.length) {
        const key = lanes[lane]!.shift()!
        if (queued.get(key) === lane) {
          queued.delete(key)
          return key
        }
      }
    }
    return null
  }

  const pump = () => {
    while (!stopped && active < opts.workers) {
      const key = shift()
      if (key === null) return
      running.add(key)
      active++
      void opts
        .handle(key)
        .then(
          () => failures.delete(key),
          (err) => {
            opts.onError?.(key, err)
            const n = (failures.get(key) ?? 0) + 1
            failures.set(key, n)
            const delay = Math.min((opts.baseBackoffMs ?? 200) * 2 ** (n - 1), opts.maxBackoffMs ?? 30_000)
            const cancel = opts.clock.setTimer(() => {
              timers.delete(cancel)
              add(key, 'high')
            }, delay)
            timers.add(cancel)
          },
        )
        .finally(() => {
          running.delete(key)
          active--
          const again = dirty.get(key)
          if (again !== undefined) {
            dirty.delete(key)
            addLane(key, again)
          }
          pump()
          checkIdle()
        })
    }
  }

  const addLane = (key: string, lane: number) => {
    if (stopped) return
    if (running.has(key)) {
      dirty.set(key, Math.min(dirty.get(key) ?? lane, lane))
      return
    }
    const cur = queued.get(key)
    if (cur !== undefined && cur <= lane) return
    queued.set(key, lane)
    lanes[lane]!.push(key)
    pump()
  }
  const add = (key: string, priority: Priority = 'high') => addLane(key, RANK[priority])

  return {
    add,
    get size() {
      return waiting() + active
    },
    idle: () =>
      new Promise<void>((resolve) => {
        idleWaiters.push(resolve)
        checkIdle()
      }),
    async stop() {
      stopped = true
      timers.forEach((cancel) => cancel())
      lanes.forEach((l) => (l.length = 0))
      queued.clear()
      if (active > 0) await new Promise<void>((r) => idleWaiters.push(r))
    },
  }
}
