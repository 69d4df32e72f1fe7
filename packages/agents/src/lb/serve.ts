/**
 * Feeds the node's desired load balancers to the data plane, one apply at a time with only
 * the latest desired state queued, and reports each result with the generation it came with
 * (the control plane waits for that generation before it stops a drained instance). Servers on
 * tenant networks are applied once the network pass of the same desired state is done, with
 * the namespaces it made (`netns`).
 */
import type { Logger } from 'pino'
import type { TDesiredLb, TLbReport, TLbServerStat } from '@alveary/core/protocol'
import { createRateMeter } from './stats'
import type { LbNamespace } from '../network/overlay/lb-join'
import type { LbPlane } from './types'

export interface LbReportFrame {
  generation: number
  reports: TLbReport[]
}

const NO_NETNS: ReadonlyMap<string, LbNamespace> = new Map()

export function createLbServer({
  plane,
  send,
  logger,
  netns = async () => NO_NETNS,
  retryMs = 5_000,
}: {
  plane: LbPlane
  send(frame: LbReportFrame): void
  logger: Logger
  /** The load-balancer namespaces per tenant network, after the network passes asked for so far. */
  netns?: () => Promise<ReadonlyMap<string, LbNamespace>>
  retryMs?: number
}) {
  let applied = '[]'
  let latest: { lbs: readonly TDesiredLb[]; generation: number } | null = null
  let last: LbReportFrame | null = null
  let next: { lbs: readonly TDesiredLb[]; generation: number } | null = null
  let running: Promise<void> | null = null
  /** Once stopped, nothing restarts the data plane (desired states still arrive while the agent exits). */
  let stopped = false
  const meter = createRateMeter()

  async function drain() {
    await null
    while (next) {
      const { lbs, generation } = next
      next = null
      try {
        const ns = lbs.some((lb) => lb.backends.some((b) => b.servers.some((s) => s.networkId))) ? await netns() : NO_NETNS
        const text = JSON.stringify([lbs, [...ns]])
        // Same load balancers as before: nothing to change, only the generation moves on.
        const reports = text === applied && last ? last.reports : await plane.apply(lbs, ns)
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
    if (stopped) return
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
      if (stopped) return
      // A newer desired state replaces any retry of an older one.
      if (retry) clearTimeout(retry)
      retry = null
      next = { lbs, generation }
      latest = next
      kick()
    },
    /** Applies the latest desired state again (the namespaces it uses changed). */
    reapply() {
      if (stopped || !latest || next) return
      next = latest
      kick()
    },
    /** The last report, to repeat after a reconnect. */
    last: () => last,
    /** Per-server traffic since the previous call. */
    stats: async (): Promise<TLbServerStat[]> => meter(await plane.stats()),
    async stop() {
      stopped = true
      next = null
      if (retry) clearTimeout(retry)
      retry = null
      await running
      await plane.stop()
    },
  }
}
