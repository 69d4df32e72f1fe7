'use client'
import { useQuery } from '@tanstack/react-query'
import clsx from 'clsx'
import Link from 'next/link'
import { useEffect, useState } from 'react'
import { fmtNum, shortId } from '@/lib/format'
import { useTRPC, type TSchedulerStats } from '@/lib/trpc'
import { DataTable } from './data-table'
import { PlacementCharts } from './placement-charts'
import { ErrorBox, Loading, Mono, Panel, RelTime, tdCls, trCls } from './ui'

const REFRESH_MS = 2_000
/** Rates are computed over this much history of the 2 s samples. */
const RATE_WINDOW_MS = 10_000

type Counter = 'placed' | 'conflicts' | 'unschedulable' | 'errors'
const COUNTERS: { key: Counter; label: string; hint: string; tone: string }[] = [
  { key: 'placed', label: 'Placed', hint: 'instances committed to a node', tone: 'text-emerald-700' },
  { key: 'conflicts', label: 'Conflicts', hint: 'optimistic commits that lost a race; re-planned at once', tone: 'text-amber-700' },
  { key: 'unschedulable', label: 'Unschedulable', hint: 'attempts that fit on no node (the reason shows on the instance)', tone: 'text-orange-700' },
  { key: 'errors', label: 'Errors', hint: 'failed plans or commits; retried with backoff', tone: 'text-red-700' },
]

type Sample = { at: number } & Pick<TSchedulerStats, Counter>

/** The last samples (2 s apart) within the rate window, to show what changed recently. */
function useHistory(stats: TSchedulerStats | null | undefined, at: number): Sample[] {
  const [history, setHistory] = useState<Sample[]>([])
  useEffect(() => {
    if (!stats) return setHistory([])
    const s: Sample = { at, placed: stats.placed, conflicts: stats.conflicts, unschedulable: stats.unschedulable, errors: stats.errors }
    setHistory((h) => [...h.filter((x) => at - x.at <= RATE_WINDOW_MS && x.at < at), s])
  }, [stats, at])
  return history
}

function CounterTile({ label, hint, value, delta, seconds, tone, testId }: { label: string; hint: string; value: number; delta: number | null; seconds: number; tone: string; testId: string }) {
  return (
    <div className="px-4 py-3" data-testid={testId} data-value={value} title={hint}>
      <div className="text-xs font-medium uppercase tracking-wide text-slate-500">{label}</div>
      <div className={clsx('mt-1 text-2xl font-semibold tabular-nums', value > 0 && label !== 'Placed' ? tone : 'text-slate-900')} data-testid={`${testId}-value`}>
        {fmtNum(value)}
      </div>
      <div className="text-xs tabular-nums text-slate-500">{delta === null ? hint : delta > 0 ? <span className={tone}>+{fmtNum(delta)} in {seconds}s</span> : `none in ${seconds}s`}</div>
    </div>
  )
}

/** Counters and per-tenant queues of this BFF's scheduler (null: not the leader), polled every 2 s. */
export function SchedulerPanel() {
  const trpc = useTRPC()
  const stats = useQuery(trpc.nodes.scheduler.queryOptions(undefined, { refetchInterval: REFRESH_MS, refetchIntervalInBackground: false, staleTime: 0 }))
  const tenants = useQuery(trpc.tenants.list.queryOptions())
  const history = useHistory(stats.data, stats.dataUpdatedAt)
  const slugOf = new Map((tenants.data ?? []).map((t) => [t.id, t.slug]))

  if (stats.isPending) return <Loading label="Loading the scheduler…" />
  const s = stats.data
  const first = history[0]
  const last = history.at(-1)
  const seconds = first && last ? Math.round((last.at - first.at) / 1000) : 0
  const delta = (k: Counter) => (first && last && seconds > 0 ? last[k] - first[k] : null)
  const queues = [...(s?.queues ?? [])].sort((a, b) => b.active + b.backoff + b.parked - (a.active + a.backoff + a.parked) || a.key.localeCompare(b.key))
  const waiting = queues.reduce((n, q) => n + q.active + q.backoff + q.parked, 0)
  const max = Math.max(1, ...queues.map((q) => q.active + q.backoff + q.parked))

  return (
    <div data-testid="scheduler-panel" data-leader={s ? 'true' : 'false'}>
      {stats.error ? <ErrorBox error={stats.error} className="mb-4" /> : null}
      {s === null ? (
        <Panel className="mb-5" bodyClassName="flex items-start gap-3 p-4 text-sm text-slate-600" testId="scheduler-not-leader">
          <span className="mt-1 size-2 shrink-0 rounded-full bg-slate-400" />
          <div>
            <div className="font-medium text-slate-900">This BFF is not the scheduler leader.</div>
            Only the BFF holding the leader lock runs the scheduler, so its counters and queues are not visible from here. This page keeps checking every 2 s and shows
            them as soon as this BFF takes over. The chart below comes from the database and shows on every BFF.
          </div>
        </Panel>
      ) : null}
      <PlacementCharts slugOf={slugOf} />
      {s ? (
        <>
          <Panel className="mb-5">
            <div className="grid grid-cols-2 divide-slate-100 md:grid-cols-4 md:divide-x">
              {COUNTERS.map((c) => (
                <CounterTile key={c.key} label={c.label} hint={c.hint} value={s[c.key]} delta={delta(c.key)} seconds={seconds} tone={c.tone} testId={`scheduler-${c.key}`} />
              ))}
            </div>
            <div className="flex items-center justify-between border-t border-slate-100 px-4 py-1.5 text-xs text-slate-500">
              <span>Counted since this BFF became the leader.</span>
              <span className="inline-flex items-center gap-1.5">
                <span className={clsx('size-1.5 rounded-full', stats.isError ? 'bg-red-500' : 'bg-emerald-500', stats.isFetching && 'animate-pulse')} />
                refreshed every 2 s · updated <RelTime date={stats.dataUpdatedAt ? new Date(stats.dataUpdatedAt) : null} />
              </span>
            </div>
          </Panel>
          <Panel
            title={
              <>
                Queues{' '}
                <span className="font-normal text-slate-500" data-testid="scheduler-waiting" data-value={waiting}>
                  ({fmtNum(waiting)} waiting)
                </span>
              </>
            }
            testId="scheduler-queues"
          >
            <DataTable
              testId="scheduler-queues-table"
              columns={[
                { label: 'Tenant' },
                { label: 'Active', className: 'text-right', title: 'ready to be planned, highest priority first' },
                { label: 'Backoff', className: 'text-right', title: 'failed recently; retried after a doubling delay' },
                { label: 'Parked', className: 'text-right', title: 'fit nowhere; retried when nodes change' },
                { className: 'w-1/3' },
              ]}
              empty={queues.length === 0 ? 'All queues are empty: nothing waits to be placed.' : null}
            >
              {queues.map((q) => {
                const slug = q.key === '*' ? null : slugOf.get(q.key)
                const total = q.active + q.backoff + q.parked
                return (
                  <tr key={q.key} className={trCls} data-testid="scheduler-queue-row" data-tenant={slug ?? q.key} data-active={q.active} data-backoff={q.backoff} data-parked={q.parked}>
                    <td className={tdCls}>
                      {q.key === '*' ? (
                        <span className="text-slate-700">all tenants (serial mode)</span>
                      ) : slug ? (
                        <Link href={`/t/${slug}/apps`} className="font-mono text-[12px] font-medium text-slate-900 hover:underline">
                          {slug}
                        </Link>
                      ) : (
                        <Mono title={q.key}>{shortId(q.key)}</Mono>
                      )}
                    </td>
                    <td className={`${tdCls} text-right font-medium`}>{fmtNum(q.active)}</td>
                    <td className={clsx(tdCls, 'text-right', q.backoff > 0 && 'font-medium text-amber-700')}>{fmtNum(q.backoff)}</td>
                    <td className={clsx(tdCls, 'text-right', q.parked > 0 && 'font-medium text-orange-700')}>{fmtNum(q.parked)}</td>
                    <td className={tdCls}>
                      <div className="flex h-2 w-full overflow-hidden rounded-full bg-slate-100" title={`${total} waiting`}>
                        <div className="h-full bg-sky-500" style={{ width: `${(q.active / max) * 100}%` }} />
                        <div className="h-full bg-amber-400" style={{ width: `${(q.backoff / max) * 100}%` }} />
                        <div className="h-full bg-orange-400" style={{ width: `${(q.parked / max) * 100}%` }} />
                      </div>
                    </td>
                  </tr>
                )
              })}
            </DataTable>
            <div className="flex flex-wrap gap-x-4 gap-y-1 border-t border-slate-100 px-4 py-2 text-xs text-slate-500">
              <span>
                <span className="mr-1 inline-block size-2 rounded-sm bg-sky-500" />
                active: ready to be planned, highest priority first
              </span>
              <span>
                <span className="mr-1 inline-block size-2 rounded-sm bg-amber-400" />
                backoff: retried after a doubling delay
              </span>
              <span>
                <span className="mr-1 inline-block size-2 rounded-sm bg-orange-400" />
                parked: fits on no node; retried when nodes change
              </span>
            </div>
          </Panel>
        </>
      ) : null}
    </div>
  )
}
