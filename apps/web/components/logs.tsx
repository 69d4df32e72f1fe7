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

/**
 * The newest lines, then new ones as they arrive (logs.follow), de-duplicated by id.
 * Following can be paused (the view holds still); resuming catches up from the last line.
 */
function LogView({ tenantId, appId, instanceId, showInstance, following, query }: { tenantId: string; appId: string; instanceId: string | undefined; showInstance: boolean; following: boolean; query: string }) {
  const trpc = useTRPC()
  const initial = useQuery(trpc.logs.list.queryOptions({ tenantId, appId, instanceId, limit: 300 }, { staleTime: Infinity, refetchOnWindowFocus: false }))
  const [more, setMore] = useState<TLogLine[]>([])
  const lastId = more.at(-1)?.id ?? initial.data?.at(-1)?.id ?? ''
  // The cursor is fixed when following (re)starts, so new lines don't restart the stream.
  const [resumeFrom, setResumeFrom] = useState<string | null>(null)
  useLayoutEffect(() => {
    if (initial.data && following) setResumeFrom(lastId)
  }, [initial.data, following])
  const follow = useSubscription(
    trpc.logs.follow.subscriptionOptions(
      { tenantId, appId, instanceId, afterId: resumeFrom ?? '' },
      { enabled: following && resumeFrom !== null, onData: (lines) => setMore((prev) => [...prev, ...lines].slice(-MAX_LINES)) },
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
  const needle = query.trim().toLowerCase()
  const shown = needle ? lines.filter((l) => l.line.toLowerCase().includes(needle)) : lines

  // Stick to the bottom unless the reader scrolled up.
  const box = useRef<HTMLDivElement>(null)
  const atBottom = useRef(true)
  useLayoutEffect(() => {
    const el = box.current
    if (el && atBottom.current && following) el.scrollTop = el.scrollHeight
  }, [shown, following])

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
        {lines.length > 0 && shown.length === 0 ? <div className="text-slate-500">No loaded line matches “{query}”.</div> : null}
        {shown.map((l) => (
          <div key={l.id} className="flex gap-3 whitespace-pre-wrap break-all hover:bg-white/5">
            <span className="shrink-0 select-none text-slate-500">{time(l.ts)}</span>
            {showInstance ? <span className="shrink-0 select-none text-sky-400/80">{shortId(l.instanceId)}</span> : null}
            <span className={clsx('min-w-0', l.stream === 'stderr' && 'text-red-300')}>{needle ? <Highlight text={l.line} needle={needle} /> : l.line}</span>
          </div>
        ))}
      </div>
      {needle ? (
        <div className="border-t border-slate-800 bg-slate-950 px-3 py-1 text-right text-[11px] text-slate-400" data-testid="logs-matches">
          {shown.length} of {lines.length} loaded lines match
        </div>
      ) : null}
    </>
  )
}

function Highlight({ text, needle }: { text: string; needle: string }) {
  const parts: React.ReactNode[] = []
  const lower = text.toLowerCase()
  let at = 0
  for (let i = lower.indexOf(needle); i >= 0; i = lower.indexOf(needle, at)) {
    parts.push(text.slice(at, i), <mark key={i} className="rounded-sm bg-amber-300/80 text-slate-950">{text.slice(i, i + needle.length)}</mark>)
    at = i + needle.length
  }
  parts.push(text.slice(at))
  return <>{parts}</>
}

export function LogsPanel({ tenantId, appId, instances }: { tenantId: string; appId: string; instances: TInstance[] }) {
  const [instanceId, setInstanceId] = useState('')
  const [following, setFollowing] = useState(true)
  const [query, setQuery] = useState('')
  return (
    <Panel
      title="Logs"
      className="mb-5"
      testId="logs-panel"
      actions={
        <div className="flex items-center gap-2">
        <input
          type="search"
          aria-label="Search loaded lines"
          placeholder="Search loaded lines"
          value={query}
          onChange={(e) => setQuery(e.target.value)}
          className={`${inputBase} w-48 text-xs`}
        />
        <label className="flex items-center gap-1 text-xs text-slate-600">
          <input type="checkbox" checked={following} onChange={(e) => setFollowing(e.target.checked)} aria-label="Follow" />
          Follow
        </label>
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
        </div>
      }
    >
      <LogView key={instanceId} tenantId={tenantId} appId={appId} instanceId={instanceId || undefined} showInstance={!instanceId} following={following} query={query} />
    </Panel>
  )
}
