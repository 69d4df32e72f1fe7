'use client'
import { useQuery } from '@tanstack/react-query'
import { useSubscription } from '@trpc/tanstack-react-query'
import clsx from 'clsx'
import { useLayoutEffect, useMemo, useRef, useState } from 'react'
import { shortId } from '@/lib/format'
import { useTRPC, type RouterOutputs, type TInstance } from '@/lib/trpc'
import { ErrorBox, inputBase, Loading, Panel } from './ui'

type TLogLine = RouterOutputs['logs']['list'][number]
const MAX_LINES = 2000

function time(d: Date) {
  return new Date(d).toLocaleTimeString('en-GB', { hour12: false })
}

/** The newest lines, then new ones as they arrive (logs.follow), de-duplicated by id. */
function LogView({ tenantId, appId, instanceId, showInstance }: { tenantId: string; appId: string; instanceId: string | undefined; showInstance: boolean }) {
  const trpc = useTRPC()
  const initial = useQuery(trpc.logs.list.queryOptions({ tenantId, appId, instanceId, limit: 300 }, { staleTime: Infinity, refetchOnWindowFocus: false }))
  const [more, setMore] = useState<TLogLine[]>([])
  const startAfter = initial.data ? (initial.data.at(-1)?.id ?? '') : null
  const follow = useSubscription(
    trpc.logs.follow.subscriptionOptions(
      { tenantId, appId, instanceId, afterId: startAfter ?? '' },
      { enabled: startAfter !== null, onData: (lines) => setMore((prev) => [...prev, ...lines].slice(-MAX_LINES)) },
    ),
  )
  const lines = useMemo(() => {
    const seen = new Set<string>()
    const out: TLogLine[] = []
    for (const l of [...(initial.data ?? []), ...more]) {
      if (seen.has(l.id)) continue
      seen.add(l.id)
      out.push(l)
    }
    return out.slice(-MAX_LINES)
  }, [initial.data, more])

  // Stick to the bottom unless the reader scrolled up.
  const box = useRef<HTMLDivElement>(null)
  const atBottom = useRef(true)
  useLayoutEffect(() => {
    const el = box.current
    if (el && atBottom.current) el.scrollTop = el.scrollHeight
  }, [lines])

  if (initial.isPending) return <Loading label="Loading logs…" />
  return (
    <>
      <ErrorBox error={initial.error ?? follow.error} className="m-3" />
      <div
        ref={box}
        onScroll={(e) => {
          const el = e.currentTarget
          atBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 24
        }}
        className="max-h-80 min-h-24 overflow-auto rounded-b-lg bg-slate-950 px-3 py-2 font-mono text-[12px] leading-5 text-slate-200"
        data-testid="logs"
      >
        {lines.length === 0 ? <div className="text-slate-500">No output yet.</div> : null}
        {lines.map((l) => (
          <div key={l.id} className="flex gap-3 whitespace-pre-wrap break-all hover:bg-white/5">
            <span className="shrink-0 select-none text-slate-500">{time(l.ts)}</span>
            {showInstance ? <span className="shrink-0 select-none text-sky-400/80">{shortId(l.instanceId)}</span> : null}
            <span className={clsx('min-w-0', l.stream === 'stderr' && 'text-red-300')}>{l.line}</span>
          </div>
        ))}
      </div>
    </>
  )
}

export function LogsPanel({ tenantId, appId, instances }: { tenantId: string; appId: string; instances: TInstance[] }) {
  const [instanceId, setInstanceId] = useState('')
  return (
    <Panel
      title="Logs"
      className="mb-5"
      testId="logs-panel"
      actions={
        <select
          aria-label="Instance"
          value={instanceId}
          onChange={(e) => setInstanceId(e.target.value)}
          className={`${inputBase} w-56 text-xs`}
        >
          <option value="">all instances</option>
          {instances.map((i) => (
            <option key={i.id} value={i.id}>
              #{i.ordinal} · {shortId(i.id)} ({i.state})
            </option>
          ))}
        </select>
      }
    >
      <LogView key={instanceId} tenantId={tenantId} appId={appId} instanceId={instanceId || undefined} showInstance={!instanceId} />
    </Panel>
  )
}
