/** Exponential backoff with full jitter: uniformly random in [base, min(cap, base * 2^attempt)]. */
export function backoffMs(attempt: number, policy: { baseMs: number; capMs: number }, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.capMs, policy.baseMs * 2 ** Math.min(attempt, 30))
  return Math.round(policy.baseMs + random() * Math.max(0, ceiling - policy.baseMs))
}
