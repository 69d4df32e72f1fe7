/**
 * Feeds the node's desired load balancers to the data plane, one apply at a time with only
 * the latest desired state queued, and reports each result with the generation it came with
 * (the control plane waits for that generation before it stops a drained instance).
 */
import type { Logger } from 'pino'
import type { TDesiredLb, TLbReport, TLbServerStat } from '@alveary/core/protocol'
import { createRateMeter } from './stats'
import type { LbPlane } from './types'

export interface LbReportFrame {
  generation: number
  reports: TLbReport[]
}

export function createLbServer({ plane, send, logger, retryMs = 5_000 }: { plane: LbPlane; send(frame: LbReportFrame): void; logger: Logger; retryMs?: number }) {
  let applied = '[]'
  let last: LbReportFrame | null = null
  let next: { lbs: readonly TDesiredLb[]; generation: number } | null = null
  let running: Promise<void> | null = null
  const meter = createRateMeter()

  async function drain() {
    await null
    while (next) {
      const { lbs, generation } = next
      next = null
      const text = JSON.stringify(lbs)
      try {
        // Same load balancers as before: nothing to change, only the generation moves on.
        const reports = text === applied && last ? last.reports : await plane.apply(lbs)
        // A load balancer in error is tried again, even with the same desired state.
        applied = reports.some((r) => r.state === 'error') ? '' : text
        last = { generation, reports }
      } catch (err) {
        logger.error({ err }, 'applying load balancers failed')
        last = { generation, reports: lbs.map((lb) => ({ id: lb.id, state: 'error', message: `the data plane failed: ${(err as Error).message}`.slice(0, 500) })) }
        applied = ''
      }
      send(last)
      if (!applied) retryLater({ lbs, generation })
    }
  }
  /** What failed (a port someone else held, a reload that did not take) may work a little later. */
  let retry: NodeJS.Timeout | null = null
  function retryLater(what: { lbs: readonly TDesiredLb[]; generation: number }) {
    if (retry) clearTimeout(retry)
    retry = setTimeout(() => {
      retry = null
      if (next) return
      next = what
      kick()
    }, retryMs)
    retry.unref()
  }
  function kick() {
    running ??= drain().finally(() => {
      running = null
      if (next) kick()
    })
  }

  return {
    apply(lbs: readonly TDesiredLb[], generation: number) {
      // A newer desired state replaces any retry of an older one.
      if (retry) clearTimeout(retry)
      retry = null
      next = { lbs, generation }
      kick()
    },
    /** The last report, to repeat after a reconnect. */
    last: () => last,
    /** Per-server traffic since the previous call. */
    stats: async (): Promise<TLbServerStat[]> => meter(await plane.stats()),
    async stop() {
      next = null
      if (retry) clearTimeout(retry)
      retry = null
      await running
      await plane.stop()
    },
  }
}
