/**
 * The agent's status reports: changes of instances are batched for a short while (health
 * results, messages, passing states), except a state reached — running, stopped, exited,
 * failed — which goes out at once: moves, rollouts and consoles wait for exactly those.
 * A full report (after a welcome, after a desired state) supersedes whatever was pending.
 */
import type { TInstanceReport, TLbReport } from '@alveary/core/protocol'

const SETTLED: ReadonlySet<TInstanceReport['state']> = new Set(['running', 'stopped', 'exited', 'failed'])

type StatusFrame = { type: 'status'; full: boolean; instances: TInstanceReport[]; loadBalancers?: TLbReport[]; lbGeneration?: number }

export function createStatusReports(o: {
  debounceMs: number
  /** False while disconnected: changes are dropped (the full report after the next welcome covers them). */
  connected(): boolean
  send(frame: StatusFrame): void
  withHealth(r: TInstanceReport): TInstanceReport
}) {
  let timer: NodeJS.Timeout | null = null
  const pending = new Map<string, TInstanceReport>()
  /** The state each instance was last reported in. */
  const reported = new Map<string, TInstanceReport['state']>()

  function cancel(): void {
    if (timer) clearTimeout(timer)
    timer = null
  }

  function flush(): void {
    cancel()
    if (!o.connected() || pending.size === 0) return
    const instances = [...pending.values()]
    pending.clear()
    for (const r of instances) reported.set(r.instanceId, r.state)
    o.send({ type: 'status', full: false, instances })
  }

  return {
    queue(report: TInstanceReport): void {
      if (!o.connected()) return
      // An exit is news of its own (the server keeps it as an event): never coalesce it away.
      const before = pending.get(report.instanceId)
      if (before && (before.state === 'exited' || before.state === 'failed') && before.state !== report.state) flush()
      pending.set(report.instanceId, o.withHealth(report))
      if (SETTLED.has(report.state) && reported.get(report.instanceId) !== report.state) flush()
      else timer ??= setTimeout(flush, o.debounceMs)
    },
    flush,
    full(instances: TInstanceReport[], lb: { reports: TLbReport[]; generation: number } | null): void {
      if (!o.connected()) return
      cancel()
      pending.clear()
      reported.clear()
      for (const r of instances) reported.set(r.instanceId, r.state)
      o.send({ type: 'status', full: true, instances, ...(lb && { loadBalancers: lb.reports, lbGeneration: lb.generation }) })
    },
    /** Disconnected or stopping: nothing pending goes out any more. */
    drop(): void {
      cancel()
      pending.clear()
    },
  }
}
