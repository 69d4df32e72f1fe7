'use client'
import { Badge } from '@/components/ui'
import { fmtDateTime, relTime } from '@/lib/format'
import { useNow } from '@/lib/use-now'
import type { TInstance, TNodeInstance } from '@/lib/trpc'

/** The same on the app page and the node page. */
type TLastExit = NonNullable<TInstance['lastExit'] | TNodeInstance['lastExit']>

const EXIT_REASON: Record<TLastExit['reason'], string> = {
  exited: 'exited',
  signaled: 'killed by a signal',
  oomKilled: 'OOM killed',
  unhealthy: 'restarted after failed liveness checks',
  stopped: 'stopped by the node',
  lost: 'ended while no agent watched it',
}

const lastExitTitle = (e: TLastExit) =>
  [EXIT_REASON[e.reason], e.exitCode === null ? null : `exit code ${e.exitCode}`, e.signal, fmtDateTime(e.at)].filter(Boolean).join(' · ') + `\n${e.message}`

/** Its last run was killed at its memory limit: said even while it runs again ("OOM killed 2m ago"). */
export function OomBadge({ lastExit }: { lastExit: TLastExit }) {
  const now = useNow()
  return (
    <Badge tone="red" title={lastExit.message} data-testid="instance-oom" data-at={new Date(lastExit.at).toISOString()}>
      OOM killed{now === null ? '' : ` ${relTime(lastExit.at, now)}`}
    </Badge>
  )
}

/** How the previous run ended, under the current state's message (exited or stopped: that message is this exit). */
export function LastExitLine({ lastExit }: { lastExit: TLastExit }) {
  const now = useNow()
  return (
    <span className="block truncate text-xs text-slate-500" title={lastExitTitle(lastExit)} data-testid="instance-last-exit" data-reason={lastExit.reason}>
      <span className="font-medium text-slate-600">last exit{now === null ? '' : ` ${relTime(lastExit.at, now)}`}:</span> {lastExit.message}
    </span>
  )
}
