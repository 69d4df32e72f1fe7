import type { TDesired } from '@alveary/core/protocol'

/**
 * Sends one node's desired state: bursts of changes coalesce into one send of the latest
 * full state, and a failed load (store unreachable) is retried with backoff while the
 * connection lives, so a change is never lost to a transient error.
 */
export function createDesiredPusher(opts: { load(): Promise<TDesired>; send(d: TDesired): void; isOpen(): boolean; onError(err: Error): void }) {
  let running: Promise<void> | null = null
  let again = false
  let retryTimer: NodeJS.Timeout | null = null
  let failures = 0

  const run = async () => {
    do {
      again = false
      try {
        const desired = await opts.load()
        failures = 0
        if (opts.isOpen()) opts.send(desired)
      } catch (err) {
        opts.onError(err as Error)
        failures++
        if (opts.isOpen()) retryTimer ??= setTimeout(() => ((retryTimer = null), push()), Math.min(10_000, 250 * 2 ** Math.min(failures, 6)))
        return
      }
    } while (again && opts.isOpen())
  }
  const push = () => {
    if (!opts.isOpen()) return
    if (running) {
      again = true
      return
    }
    running = run().finally(() => (running = null))
  }

  return {
    push,
    async idle() {
      while (running) await running
    },
    /** Stops retrying (the connection closed). */
    stop() {
      if (retryTimer) clearTimeout(retryTimer)
      retryTimer = null
    },
  }
}
