/**
 * A keyed work queue: a key queued while it waits is queued once; a key being processed
 * is re-queued after it finishes (never processed twice at once); failures retry with
 * capped exponential backoff. Workers run in parallel across keys.
 */
export interface WorkQueueOptions {
  workers: number
  handle(key: string): Promise<void>
  onError?(key: string, err: unknown): void
  baseBackoffMs?: number
  maxBackoffMs?: number
}

export interface WorkQueue {
  add(key: string): void
  /** Resolves when nothing is queued or running (tests, shutdown). */
  idle(): Promise<void>
  stop(): Promise<void>
  readonly size: number
}

export function createWorkQueue(opts: WorkQueueOptions): WorkQueue {
  const queue: string[] = []
  const queued = new Set<string>()
  const running = new Set<string>()
  const dirty = new Set<string>()
  const failures = new Map<string, number>()
  const timers = new Set<NodeJS.Timeout>()
  let active = 0
  let stopped = false
  let idleWaiters: (() => void)[] = []

  const checkIdle = () => {
    if (active === 0 && queue.length === 0) {
      const w = idleWaiters
      idleWaiters = []
      w.forEach((f) => f())
    }
  }

  const pump = () => {
    while (!stopped && active < opts.workers && queue.length > 0) {
      const key = queue.shift()!
      queued.delete(key)
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
            const t = setTimeout(() => {
              timers.delete(t)
              add(key)
            }, delay)
            timers.add(t)
          },
        )
        .finally(() => {
          running.delete(key)
          active--
          if (dirty.delete(key)) add(key)
          pump()
          checkIdle()
        })
    }
  }

  const add = (key: string) => {
    if (stopped) return
    if (running.has(key)) {
      dirty.add(key)
      return
    }
    if (queued.has(key)) return
    queued.add(key)
    queue.push(key)
    pump()
  }

  return {
    add,
    get size() {
      return queue.length + active
    },
    idle: () =>
      new Promise<void>((resolve) => {
        idleWaiters.push(resolve)
        checkIdle()
      }),
    async stop() {
      stopped = true
      timers.forEach(clearTimeout)
      queue.length = 0
      queued.clear()
      if (active > 0) await new Promise<void>((r) => idleWaiters.push(r))
    },
  }
}
