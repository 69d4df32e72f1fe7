/**
 * When what no start waits for (removals of namespaces, the pool's refill: ~10 processes and the
 * kernel's making and unmaking of namespaces) may run in isolated.ts: once the starts handed out
 * have been set up (bwrap, the uid switch, the command's exec: ~15 ms on a quiet node, over
 * 100 ms at load 20), so that those are not set up beside it.
 *
 * Counted from the latest start, not the first: from the first, a steady stream of starts (one
 * every ~110 ms in bench:sandbox) ran them in the pass of a start (~25 ms of processes beside its
 * sandbox's setup), and a pool of 2 ran dry within the wait (the next start built its namespace
 * itself, ~25 ms more): 75 ms at p99 where a start from the pool takes 27 ms at p50.
 */

/**
 * How long after the latest start handed out they wait: at least settleMs, and SETTLE_PASSES
 * times what that start's own change took (its claim and nft, processes as slow as the node is
 * busy, like the sandbox's setup beside them).
 */
export const SETTLE_MS = 50
const SETTLE_PASSES = 4
/** A steady stream of starts (one within each wait) puts them off this long after the first at the most. */
const SETTLE_MAX_MS = 500

/** `settleMs` 0: they never wait (tests, cleanup). `kick`: asks for a pass, which runs them once due. */
export function createSettle(settleMs: number, kick: () => void) {
  /** The first start they wait for, and until when (performance.now()); null: they do not wait. */
  let since: number | null = null
  let until = 0
  let timer: NodeJS.Timeout | undefined

  return {
    /** A pass handed out starts at `now`; their own change took `changeMs`. */
    handedOut(now: number, changeMs: number): void {
      if (settleMs <= 0) return
      since ??= now
      until = Math.min(now + Math.max(settleMs, SETTLE_PASSES * changeMs), since + Math.max(settleMs, SETTLE_MAX_MS))
    },
    /** True when they may run now (and they are no longer put off); else a pass comes once they may. */
    due(now: number): boolean {
      if (since === null || until <= now) {
        since = null
        return true
      }
      // The timer may come early (the wait grew meanwhile): that pass sets the next.
      timer ??= setTimeout(() => {
        timer = undefined
        kick()
      }, until - now)
      timer.unref()
      return false
    },
  }
}
