/**
 * The health checks of one run of one instance: each probe on its own interval (readiness
 * sooner while the run starts: nextCheckMs), results folded through the thresholds. Readiness starts false and gates load balancers and
 * rollouts; a liveness check that fails `failureThreshold` times in a row asks for a
 * restart (once per run: the restart ends the run).
 */
import type { TProbe } from '@alveary/core/schemas'
import { runProbe, type ProbeTarget } from './probe'
import { record, type Streak } from './thresholds'

export interface Check {
  kind: 'readiness' | 'liveness'
  portName: string
  probe: TProbe
  target: ProbeTarget
}

export interface Health {
  /** null when there is no readiness check. */
  ready: boolean | null
  lastFailure: string | null
  lastFailureAt: string | null
}

export interface Checker {
  health(): Health
  stop(): void
}

/** First retry of a readiness check that has not passed yet; doubling up to its interval. */
const STARTUP_RETRY_MS = 50

/**
 * When a check runs again. A starting instance is checked for readiness at once and then
 * every 50, 100, 200 ms… until it first passes (a move's or rollout's downtime ends at that
 * answer, not at the next interval); then, and for liveness always, every interval.
 */
export function nextCheckMs(c: Pick<Check, 'kind' | 'probe'>, passedOnce: boolean, attempt: number): number {
  const interval = c.probe.intervalSeconds * 1000
  if (c.kind !== 'readiness' || passedOnce) return interval
  return Math.min(interval, STARTUP_RETRY_MS * 2 ** Math.min(attempt - 1, 16))
}

export function startChecker(checks: readonly Check[], hooks: { onChange(): void; onLivenessFailed(reason: string): void }): Checker {
  const hasReadiness = checks.some((c) => c.kind === 'readiness')
  const streaks = checks.map((c): Streak => ({ healthy: c.kind === 'liveness', successes: 0, failures: 0 }))
  /** A starting instance refuses connections for a while: that is a failure worth showing only once the check failed for real. */
  const passedOnce = checks.map(() => false)
  const attempts = checks.map(() => 0)
  const startedAt = Date.now()
  /** Readiness retried fast while starting counts as failed as long as `failureThreshold` intervals would have taken. */
  const failedLongEnough = (k: number) => {
    const c = checks[k]!
    if (c.kind !== 'readiness') return streaks[k]!.failures >= c.probe.failureThreshold
    return Date.now() - startedAt >= (c.probe.initialDelaySeconds + c.probe.failureThreshold * c.probe.intervalSeconds) * 1000
  }
  let lastFailure: string | null = null
  let lastFailureAt: string | null = null
  let stopped = false
  let livenessFired = false
  const timers = new Set<NodeJS.Timeout>()
  const later = (ms: number, fn: () => void) => {
    const t = setTimeout(() => {
      timers.delete(t)
      fn()
    }, ms)
    timers.add(t)
  }
  const ready = () => (hasReadiness ? checks.every((c, k) => c.kind !== 'readiness' || streaks[k]!.healthy) : null)

  checks.forEach((c, k) => {
    const run = async () => {
      if (stopped) return
      const reason = await runProbe(c.probe, c.target)
      if (stopped) return
      const before = ready()
      streaks[k] = record(streaks[k]!, reason === null, c.probe)
      if (reason === null) passedOnce[k] = true
      let changed = ready() !== before
      if (reason !== null && (passedOnce[k] || failedLongEnough(k))) {
        const message = `${c.kind} ${c.probe.type} ${c.portName}${c.probe.type === 'http' ? ` ${c.probe.path}` : ''}: ${reason}`.slice(0, 500)
        changed ||= message !== lastFailure
        lastFailure = message
        lastFailureAt = new Date().toISOString()
      }
      if (changed) hooks.onChange()
      if (c.kind === 'liveness' && !streaks[k]!.healthy && !livenessFired) {
        livenessFired = true
        hooks.onLivenessFailed(lastFailure ?? `${c.kind} failed`)
      }
      later(nextCheckMs(c, passedOnce[k]!, ++attempts[k]!), () => void run())
    }
    later(c.probe.initialDelaySeconds * 1000, () => void run())
  })

  return {
    health: () => ({ ready: ready(), lastFailure, lastFailureAt }),
    stop() {
      stopped = true
      timers.forEach(clearTimeout)
      timers.clear()
    },
  }
}
