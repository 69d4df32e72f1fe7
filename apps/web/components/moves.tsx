'use client'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import clsx from 'clsx'
import Link from 'next/link'
import { useState } from 'react'
import { Badge, Button, ErrorBox, inputBase, RelTime, type Tone } from '@/components/ui'
import { fmtBytes, fmtDuration } from '@/lib/format'
import { useMe } from '@/lib/session'
import { useNow } from '@/lib/use-now'
import { useTRPC, type TMove, type TMoveStep } from '@/lib/trpc'

export const STEP_LABELS: Record<string, string> = {
  reserve: 'Reserve capacity on the target',
  'prepare-target': 'Prepare the target',
  'pre-copy': 'Pre-copy the volume (source serving)',
  'stop-source': 'Stop the source',
  'final-copy': 'Final delta copy',
  'move-fence': 'Move the fence',
  'start-target': 'Start on the target',
  'wait-ready': 'Wait for readiness',
  'switch-lb': 'Switch load balancers',
  'release-source': 'Release the source',
}

const REASONS: Record<TMove['reason'], string> = { manual: 'by hand', drain: 'drain', node_lost: 'node lost', preemption: 'preemption' }

export function moveTone(state: TMove['state']): Tone {
  return state === 'succeeded' ? 'green' : state === 'failed' ? 'red' : state === 'compensating' ? 'violet' : 'amber'
}

const STEP_ICON: Record<TMoveStep['state'], { glyph: string; cls: string }> = {
  pending: { glyph: '', cls: 'border-slate-300 bg-white' },
  running: { glyph: '', cls: 'border-amber-500 bg-amber-400 animate-pulse' },
  done: { glyph: '✓', cls: 'border-emerald-600 bg-emerald-500 text-white' },
  skipped: { glyph: '–', cls: 'border-slate-300 bg-slate-100 text-slate-500' },
  failed: { glyph: '✕', cls: 'border-red-600 bg-red-500 text-white' },
  compensating: { glyph: '↶', cls: 'border-violet-500 bg-violet-400 text-white animate-pulse' },
  compensated: { glyph: '↶', cls: 'border-violet-600 bg-violet-500 text-white' },
}

function StepRow({ s, now }: { s: TMoveStep; now: number | null }) {
  const icon = STEP_ICON[s.state]
  const end = s.finishedAt ?? (s.state === 'running' && now !== null ? new Date(now) : null)
  const took = s.startedAt && end ? end.getTime() - new Date(s.startedAt).getTime() : null
  return (
    <li className="relative flex gap-3 pb-3 last:pb-0" data-testid="move-step" data-step={s.name} data-state={s.state}>
      <span className={clsx('relative z-10 mt-0.5 flex size-4 shrink-0 items-center justify-center rounded-full border text-[10px] font-bold leading-none', icon.cls)}>{icon.glyph}</span>
      <div className="min-w-0 flex-1">
        <div className="flex flex-wrap items-baseline gap-x-2">
          <span className={clsx('text-sm', s.state === 'pending' || s.state === 'skipped' ? 'text-slate-400' : 'font-medium text-slate-800')}>{STEP_LABELS[s.name] ?? s.name}</span>
          {took !== null && s.state !== 'skipped' ? <span className="text-xs tabular-nums text-slate-500">{fmtDuration(took)}</span> : null}
          {s.state === 'compensated' ? <span className="text-xs text-violet-700">undone</span> : null}
        </div>
        {s.error ? <div className="text-xs text-red-700">{s.error}</div> : null}
        {s.detail ? <div className={clsx('break-words text-xs', s.state === 'skipped' ? 'text-slate-400' : 'text-slate-600')}>{s.detail}</div> : null}
        {s.state === 'running' && s.progress !== null && s.progress < 1 ? (
          <div className="mt-1 h-1 w-48 overflow-hidden rounded-full bg-slate-200">
            <div className="h-full rounded-full bg-amber-500 transition-[width] duration-300" style={{ width: `${Math.round(s.progress * 100)}%` }} />
          </div>
        ) : null}
      </div>
    </li>
  )
}

/** The live step timeline of one move, with its progress, downtime and copy. */
export function MoveTimeline({ m }: { m: TMove }) {
  const now = useNow()
  const active = m.state === 'running' || m.state === 'compensating'
  const speed = m.copyMs > 0 ? `${fmtBytes((m.bytesCopied * 1000) / m.copyMs)}/s` : null
  return (
    <div data-testid="move-timeline" data-move-id={m.id} data-state={m.state}>
      <div className="mb-3 flex flex-wrap items-center gap-x-6 gap-y-2">
        <div className="min-w-56 flex-1">
          <div className="mb-1 flex justify-between text-xs text-slate-500">
            <span>{active ? (m.state === 'compensating' ? 'undoing' : STEP_LABELS[m.step]?.toLowerCase() ?? m.step) : m.state}</span>
            <span className="tabular-nums" data-testid="move-progress">
              {Math.round(m.progress * 100)}%
            </span>
          </div>
          <div className="h-2 overflow-hidden rounded-full bg-slate-200">
            <div
              className={clsx('h-full rounded-full transition-[width] duration-500', m.state === 'failed' || m.state === 'compensating' ? 'bg-violet-500' : m.state === 'succeeded' ? 'bg-emerald-500' : 'bg-amber-500')}
              style={{ width: `${Math.round(m.progress * 100)}%` }}
            />
          </div>
        </div>
        <Stat label="Downtime" testId="move-downtime" value={m.downtimeMs !== null ? fmtDuration(m.downtimeMs) : active ? '…' : '—'} strong={m.downtimeMs !== null} />
        <Stat label="Copied" testId="move-copied" value={m.bytesCopied ? `${fmtBytes(m.bytesCopied)}${speed ? ` · ${speed}` : ''}` : '—'} />
        <Stat label="Took" value={fmtDuration((m.finishedAt ? new Date(m.finishedAt).getTime() : (now ?? Date.now())) - new Date(m.createdAt).getTime())} />
      </div>
      {m.error ? (
        <div className="mb-3 rounded-md border border-red-200 bg-red-50 px-3 py-1.5 text-xs text-red-800" data-testid="move-error">
          {m.error}
          {m.state === 'failed' ? <> — the instance runs on {m.source.name}.</> : null}
        </div>
      ) : null}
      <ol className="relative ml-0.5 before:absolute before:bottom-2 before:left-[7px] before:top-2 before:w-px before:bg-slate-200">
        {m.steps.map((s) => (
          <StepRow key={s.name} s={s} now={now} />
        ))}
      </ol>
    </div>
  )
}

function Stat({ label, value, strong, testId }: { label: string; value: string; strong?: boolean; testId?: string }) {
  return (
    <div className="text-right">
      <div className="text-[11px] uppercase tracking-wide text-slate-500">{label}</div>
      <div className={clsx('tabular-nums', strong ? 'text-lg font-semibold text-slate-900' : 'text-sm text-slate-800')} data-testid={testId}>
        {value}
      </div>
    </div>
  )
}

/** "db-0 on node-a → node-b" with links. */
export function MoveTitle({ m }: { m: TMove }) {
  return (
    <span className="flex flex-wrap items-center gap-x-2 gap-y-1">
      <Link href={`/t/${m.tenant.slug}/apps/${m.app.id}`} className="font-semibold text-slate-900 hover:underline">
        {m.app.name}-{m.instance.ordinal}
      </Link>
      <span className="text-xs text-slate-500">{m.tenant.slug}</span>
      <span className="text-sm text-slate-700">
        <Link href={`/ops/nodes/${m.source.id}`} className="hover:underline">
          {m.source.name}
        </Link>{' '}
        →{' '}
        {m.target ? (
          <Link href={`/ops/nodes/${m.target.id}`} className="hover:underline">
            {m.target.name}
          </Link>
        ) : (
          <span className="text-slate-400">(scheduler picks)</span>
        )}
      </span>
      <Badge tone="gray">{REASONS[m.reason]}</Badge>
      <Badge tone={moveTone(m.state)} dot pulse={m.state === 'running' || m.state === 'compensating'} data-testid="move-state" data-state={m.state}>
        {m.state}
      </Badge>
      <RelTime date={m.createdAt} className="text-xs text-slate-500" />
    </span>
  )
}

/** Starts a move of one instance: to a node the operator picks, or where the scheduler puts it. */
export function MoveButton({ instanceId, fromNodeId, label, onStarted }: { instanceId: string; fromNodeId: string; label: string; onStarted?: (m: TMove) => void }) {
  const trpc = useTRPC()
  const qc = useQueryClient()
  const [open, setOpen] = useState(false)
  const [target, setTarget] = useState('')
  const nodes = useQuery(trpc.nodes.list.queryOptions(undefined, { enabled: open }))
  const start = useMutation(
    trpc.moves.start.mutationOptions({
      onSuccess: async (m) => {
        setOpen(false)
        await qc.invalidateQueries({ queryKey: trpc.moves.pathKey() })
        onStarted?.(m)
      },
    }),
  )
  if (!open)
    return (
      <Button size="sm" onClick={() => setOpen(true)} data-testid="move-instance" aria-label={`Move ${label}`}>
        Move
      </Button>
    )
  const others = (nodes.data ?? []).filter((n) => n.id !== fromNodeId)
  // A move needs somewhere to go: say so here rather than after a failed start.
  if (nodes.data && !others.some((n) => n.state === 'ready'))
    return (
      <span className="inline-flex flex-wrap items-center gap-1.5" data-testid="move-dialog">
        <span className="text-xs text-slate-500" data-testid="move-no-target">
          {others.length ? 'No other node is ready to take it.' : 'This is the only node: there is nowhere to move it.'}
        </span>
        <Button size="sm" variant="ghost" onClick={() => setOpen(false)}>
          Cancel
        </Button>
      </span>
    )
  return (
    <span className="inline-flex flex-wrap items-center gap-1.5" data-testid="move-dialog">
      <select className={`${inputBase} h-7 py-0 text-xs`} value={target} onChange={(e) => setTarget(e.target.value)} data-testid="move-target" aria-label="Target node">
        <option value="">Let the scheduler choose</option>
        {others.map((n) => (
          <option key={n.id} value={n.id} disabled={n.state !== 'ready'}>
            {n.name}
            {n.state !== 'ready' ? ' (not ready)' : !n.schedulable ? ' (cordoned)' : ''}
          </option>
        ))}
      </select>
      <Button size="sm" variant="primary" disabled={start.isPending} onClick={() => start.mutate({ instanceId, targetNodeId: target || null })} data-testid="move-start">
        {start.isPending ? 'Starting…' : 'Start move'}
      </Button>
      <Button size="sm" variant="ghost" onClick={() => setOpen(false)}>
        Cancel
      </Button>
      <ErrorBox error={start.error} className="w-full py-1 text-xs" />
    </span>
  )
}

/** "moving · step" on an instance row; a link to the move's timeline for operators (the ops view is theirs). */
export function MovingBadge({ step, moveId }: { step: string; moveId: string }) {
  const me = useMe()
  const badge = (
    <Badge tone="violet" dot pulse>
      moving · {step}
    </Badge>
  )
  if (!me.user.operator) return <span data-testid="moving-badge" title={STEP_LABELS[step] ?? step}>{badge}</span>
  return (
    <Link href={`/ops/moves#${moveId}`} data-testid="moving-badge" title={STEP_LABELS[step] ?? step}>
      {badge}
    </Link>
  )
}

export function CancelMove({ m }: { m: TMove }) {
  const trpc = useTRPC()
  const cancel = useMutation(trpc.moves.cancel.mutationOptions())
  if (m.state !== 'running') return null
  return (
    <span className="inline-flex items-center gap-2">
      <Button size="sm" variant="ghost" className="text-red-700" onClick={() => cancel.mutate({ moveId: m.id })} disabled={cancel.isPending} data-testid="move-cancel">
        Undo
      </Button>
      <ErrorBox error={cancel.error} className="py-1 text-xs" />
    </span>
  )
}

