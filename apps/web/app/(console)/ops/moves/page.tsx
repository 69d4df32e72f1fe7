'use client'
import { useQuery } from '@tanstack/react-query'
import clsx from 'clsx'
import { Fragment, useEffect, useState } from 'react'
import { DataTable } from '@/components/data-table'
import { CancelMove, MoveTimeline, MoveTitle, moveTone } from '@/components/moves'
import { Badge, ErrorBox, Loading, PageHeader, Panel, RelTime, tdCls, trCls } from '@/components/ui'
import { fmtBytes, fmtDuration } from '@/lib/format'
import { useTRPC, type TMove } from '@/lib/trpc'

/** p50 and p99 of the downtimes of succeeded moves (nearest rank). */
function percentiles(moves: TMove[]) {
  const d = moves.flatMap((m) => (m.state === 'succeeded' && m.downtimeMs !== null ? [m.downtimeMs] : [])).sort((a, b) => a - b)
  const at = (p: number) => d[Math.min(d.length - 1, Math.ceil((p / 100) * d.length) - 1)]
  return d.length ? { n: d.length, p50: at(50)!, p99: at(99)! } : null
}

function HistoryRow({ m, open, toggle }: { m: TMove; open: boolean; toggle(): void }) {
  const took = m.finishedAt ? new Date(m.finishedAt).getTime() - new Date(m.createdAt).getTime() : null
  return (
    <>
      <tr className={clsx(trCls, 'cursor-pointer')} onClick={toggle} data-testid="move-row" data-move-id={m.id} data-state={m.state}>
        <td className={tdCls}>
          <RelTime date={m.createdAt} className="text-slate-500" />
        </td>
        <td className={tdCls}>
          <span className="font-medium text-slate-900">
            {m.app.name}-{m.instance.ordinal}
          </span>{' '}
          <span className="text-xs text-slate-500">{m.tenant.slug}</span>
        </td>
        <td className={`${tdCls} text-slate-700`}>
          {m.source.name} → {m.target?.name ?? '—'}
        </td>
        <td className={`${tdCls} text-slate-600`}>{m.reason.replace('_', ' ')}</td>
        <td className={tdCls}>
          <Badge tone={moveTone(m.state)} dot>
            {m.state}
          </Badge>
        </td>
        <td className={`${tdCls} text-right font-medium`} data-testid="move-row-downtime">
          {m.downtimeMs !== null ? fmtDuration(m.downtimeMs) : '—'}
        </td>
        <td className={`${tdCls} text-right`}>{m.bytesCopied ? fmtBytes(m.bytesCopied) : '—'}</td>
        <td className={`${tdCls} text-right`}>{took !== null ? fmtDuration(took) : '—'}</td>
        <td className={`${tdCls} max-w-72 truncate text-xs text-red-700`} title={m.error ?? undefined}>
          {m.state === 'failed' ? m.error : null}
        </td>
      </tr>
      {open ? (
        <tr className="bg-slate-50/60">
          <td colSpan={9} className="px-4 py-4">
            <MoveTimeline m={m} />
          </td>
        </tr>
      ) : null}
    </>
  )
}

export default function MovesPage() {
  const trpc = useTRPC()
  // Live: every change of a move arrives as a fleet hint and refetches this list.
  const moves = useQuery(trpc.moves.list.queryOptions({ limit: 100 }))
  const [open, setOpen] = useState<string | null>(null)
  useEffect(() => {
    if (typeof window !== 'undefined' && window.location.hash) setOpen(window.location.hash.slice(1))
  }, [])
  if (moves.isPending) return <Loading />
  const all = moves.data ?? []
  const active = all.filter((m) => m.state === 'running' || m.state === 'compensating')
  const history = all.filter((m) => !active.includes(m))
  const stats = percentiles(history)
  return (
    <>
      <title>Moves · Alveary</title>
      <PageHeader
        title="Moves"
        subtitle="Instances moving between nodes with their volumes and addresses: by hand (Move on a node's instances), on drain, on node loss and for preemption."
        badge={
          stats ? (
            <span className="text-sm text-slate-500" data-testid="downtime-stats">
              downtime p50 <span className="font-semibold text-slate-800">{fmtDuration(stats.p50)}</span> · p99{' '}
              <span className="font-semibold text-slate-800">{fmtDuration(stats.p99)}</span> over {stats.n}
            </span>
          ) : null
        }
      />
      <ErrorBox error={moves.error} className="mb-4" />
      <div className="mb-5 space-y-4" data-testid="active-moves">
        {active.length ? (
          active.map((m) => (
            <Panel key={m.id} title={<MoveTitle m={m} />} actions={<CancelMove m={m} />} bodyClassName="p-4" testId="active-move">
              <MoveTimeline m={m} />
            </Panel>
          ))
        ) : (
          <Panel bodyClassName="px-4 py-3 text-sm text-slate-500">No move in progress. Start one from a node's instance list.</Panel>
        )}
      </div>
      <Panel title="History" testId="move-history">
        <DataTable
          query={moves}
          testId="moves-table"
          columns={[
            { label: 'Started' },
            { label: 'Instance' },
            { label: 'From → to' },
            { label: 'Why' },
            { label: 'Result' },
            { label: 'Downtime', className: 'text-right' },
            { label: 'Copied', className: 'text-right' },
            { label: 'Took', className: 'text-right' },
            { label: 'Error' },
          ]}
          empty={history.length ? null : 'No finished moves yet.'}
        >
          {history.map((m) => (
            <Fragment key={m.id}>
              <HistoryRow m={m} open={open === m.id} toggle={() => setOpen(open === m.id ? null : m.id)} />
            </Fragment>
          ))}
        </DataTable>
      </Panel>
    </>
  )
}
