/**
 * Time is injected so control loops, backoff and expiry can be tested without waiting:
 * code in core reads the time and sets timers only through a Clock.
 */
export interface Clock {
  now(): Date
  /** Calls fn once after ms; returns a function that cancels it. */
  setTimer(fn: () => void, ms: number): () => void
}

export const systemClock: Clock = {
  now: () => new Date(),
  setTimer(fn, ms) {
    const t = setTimeout(fn, ms)
    return () => clearTimeout(t)
  },
}

/** Calls fn every ms on the clock until the returned function is called. */
export function every(clock: Clock, ms: number, fn: () => void): () => void {
  let cancel: (() => void) | null = null
  let stopped = false
  const tick = () => {
    if (stopped) return
    cancel = clock.setTimer(() => {
      fn()
      tick()
    }, ms)
  }
  tick()
  return () => {
    stopped = true
    cancel?.()
  }
}

/** A clock that only moves when told to (tests). Timers due at or before the new time fire in order. */
export interface ManualClock extends Clock {
  advance(ms: number): Promise<void>
  set(date: Date): void
}

export function createManualClock(start = new Date('2026-01-01T00:00:00Z')): ManualClock {
  let now = start.getTime()
  let seq = 0
  const timers = new Map<number, { at: number; fn: () => void }>()
  return {
    now: () => new Date(now),
    set(date) {
      now = date.getTime()
    },
    setTimer(fn, ms) {
      const id = seq++
      timers.set(id, { at: now + Math.max(0, ms), fn })
      return () => void timers.delete(id)
    },
    async advance(ms) {
      const target = now + ms
      for (;;) {
        let next: [number, { at: number; fn: () => void }] | null = null
        for (const e of timers) if (e[1].at <= target && (!next || e[1].at < next[1].at || (e[1].at === next[1].at && e[0] < next[0]))) next = e
        if (!next) break
        timers.delete(next[0])
        now = Math.max(now, next[1].at)
        next[1].fn()
        // Let promise chains started by the timer run before the next one fires.
        await new Promise((r) => setImmediate(r))
      }
      now = target
    },
  }
}
