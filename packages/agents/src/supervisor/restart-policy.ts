/** When and how soon a finished instance runs again. */
import type { TDesiredInstance } from '@alveary/core/protocol'

export interface RestartBackoff {
  /** First restart delay; doubles on each consecutive failure. */
  baseMs: number
  capMs: number
  /** A process that ran this long counts as healthy: the next crash starts over at baseMs. */
  resetAfterMs: number
}
export const DEFAULT_RESTART_BACKOFF: RestartBackoff = { baseMs: 1000, capMs: 60_000, resetAfterMs: 10_000 }

/** Delay before the next restart after `streak` consecutive failures: doubling, capped. */
export function restartDelay(backoff: RestartBackoff, streak: number): number {
  return Math.min(backoff.capMs, backoff.baseMs * 2 ** Math.min(streak, 30))
}

/** Whether the app's restart policy runs the instance again after this exit. */
export function wantsRestart(policy: TDesiredInstance['spec']['restartPolicy'], exit: { exitCode: number | null; permanent: boolean }): boolean {
  return !(exit.permanent || policy === 'never' || (policy === 'on_failure' && exit.exitCode === 0))
}
