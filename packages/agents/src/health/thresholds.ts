/**
 * Consecutive results against thresholds: a check turns healthy after `successThreshold`
 * successes in a row and unhealthy after `failureThreshold` failures in a row. Pure.
 */
export interface Streak {
  healthy: boolean
  successes: number
  failures: number
}

export function record(s: Streak, ok: boolean, t: { successThreshold: number; failureThreshold: number }): Streak {
  const successes = ok ? s.successes + 1 : 0
  const failures = ok ? 0 : s.failures + 1
  const healthy = s.healthy ? failures < t.failureThreshold : successes >= t.successThreshold
  return { healthy, successes, failures }
}
