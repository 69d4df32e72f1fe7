/**
 * One reconciliation pass at a time, over the latest desired state: `kick()` asks for a pass
 * and returns its number; `until(n)` resolves once a pass numbered n or later has completed
 * (a pass that started after the caller's change). Passes that fail are logged and retried
 * by the next kick. A pass is given its number (it may let waiters go before it ends).
 */
import type { Logger } from 'pino'

export function createPassLoop<D>(pass: (desired: D, n: number) => Promise<void>, log: Logger, what: string) {
  let desired: D | null = null
  let requested = 0
  let completed = 0
  let running = false
  let looping: Promise<void> = Promise.resolve()
  let closed = false
  const waiters: Array<{ want: number; resolve(): void }> = []

  async function loop(): Promise<void> {
    running = true
    try {
      while (completed < requested && !closed) {
        const target = requested
        if (desired !== null) await pass(desired, target).catch((err) => log.warn({ err }, `${what}: pass failed; retrying on the next one`))
        completed = target
        for (const w of waiters.splice(0)) {
          if (w.want <= completed) w.resolve()
          else waiters.push(w)
        }
      }
    } finally {
      // In the same tick as the last check: a kick from now on starts a new loop.
      running = false
    }
  }

  function kick(): number {
    const want = ++requested
    if (!running) looping = loop()
    return want
  }

  return {
    /** Takes a new desired state; its pass runs in the background. */
    set(d: D): void {
      desired = d
      kick()
    },
    kick,
    /** The latest desired state (null before the first). */
    current: () => desired,
    /** The number of the last pass asked for (until(latest()) waits for it without asking for another). */
    latest: () => requested,
    until(want: number): Promise<void> {
      if (completed >= want || closed) return Promise.resolve()
      return new Promise((resolve) => waiters.push({ want, resolve }))
    },
    async close(): Promise<void> {
      closed = true
      for (const w of waiters.splice(0)) w.resolve()
      await looping
    },
  }
}
export type PassLoop<D> = ReturnType<typeof createPassLoop<D>>
