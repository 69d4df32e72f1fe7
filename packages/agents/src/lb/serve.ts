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

export function createLbServer({ plane, send, logger }: { plane: LbPlane; send(frame: LbReportFrame): void; logger: Logger }) {
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
        applied = text
        last = { generation, reports }
      } catch (err) {
        logger.error({ err }, 'applying load balancers failed')
        last = { generation, reports: lbs.map((lb) => ({ id: lb.id, state: 'error', message: `the data plane failed: ${(err as Error).message}`.slice(0, 500) })) }
        applied = ''
      }
      send(last)
    }
  }
  function kick() {
    running ??= drain().finally(() => {
      running = null
      if (next) kick()
    })
  }

  return {
    apply(lbs: readonly TDesiredLb[], generation: number) {
      next = { lbs, generation }
      kick()
    },
    /** The last report, to repeat after a reconnect. */
    last: () => last,
    /** Per-server traffic since the previous call. */
    stats: async (): Promise<TLbServerStat[]> => meter(await plane.stats()),
    async stop() {
      next = null
      await running
      await plane.stop()
    },
  }
}
