'use client'
import { useQuery } from '@tanstack/react-query'
import { useState } from 'react'
import { DataTable } from './data-table'
import { Badge, Button, inputBase, Mono, Panel, RelTime, tdCls, trCls } from './ui'
import { useTRPC, type RouterOutputs } from '@/lib/trpc'

type TAuditRecord = RouterOutputs['audit']['list']['records'][number]

function ResultBadge({ result }: { result: string }) {
  return result === 'ok' ? <Badge tone="green">ok</Badge> : <Badge tone="red">{result}</Badge>
}

function who(r: TAuditRecord) {
  if (r.actorKind === 'agent') return 'agent'
  return `${r.actorEmail ?? 'anonymous'}${r.actorKind === 'token' ? ' (token)' : ''}${r.operator ? ' (operator)' : ''}`
}

/**
 * The audit trail with its filters: one row per mutation through any door, newest first,
 * pages by cursor; "Export" downloads the same filter as JSON lines.
 */
export function AuditTrail({ tenantId }: { tenantId?: string }) {
  const trpc = useTRPC()
  const [actor, setActor] = useState('')
  const [action, setAction] = useState('')
  const [result, setResult] = useState<'' | 'ok' | 'failed'>('')
  const filter = { ...(tenantId && { tenantId }), ...(actor.trim() && { actor: actor.trim() }), ...(action.trim() && { action: action.trim() }), ...(result && { result }) }
  // Cursors of the pages before this one (newest first); the last is this page's.
  const [cursors, setCursors] = useState<string[]>([])
  const beforeId = cursors[cursors.length - 1]
  const q = useQuery(trpc.audit.list.queryOptions({ ...filter, ...(beforeId && { beforeId }), limit: 100 }))
  const rows = q.data?.records ?? []
  const next = q.data?.nextCursor ?? null
  const exportHref = `/api/v1/audit/export?${new URLSearchParams(filter).toString()}`
  return (
    <Panel
      actions={
        <div className="flex flex-wrap items-center gap-2">
          <input className={`${inputBase} w-48`} placeholder="Actor e-mail contains" value={actor} onChange={(e) => setActor(e.target.value)} data-testid="audit-actor" />
          <input className={`${inputBase} w-40`} placeholder="Action (apps.scale)" value={action} onChange={(e) => setAction(e.target.value)} data-testid="audit-action" />
          <select className={inputBase} value={result} onChange={(e) => setResult(e.target.value as typeof result)} data-testid="audit-result">
            <option value="">any result</option>
            <option value="ok">succeeded</option>
            <option value="failed">failed</option>
          </select>
          <a href={exportHref} className="text-sm font-medium text-sky-700 hover:underline" data-testid="audit-export" download>
            Export JSON lines
          </a>
        </div>
      }
    >
      <DataTable
        query={q}
        testId="audit-table"
        columns={[{ label: 'When', className: 'w-28' }, { label: 'Actor' }, { label: 'Door', className: 'w-16' }, { label: 'Action' }, { label: 'Target' }, { label: 'What changed' }, { label: 'Result' }, { label: 'From' }]}
        empty={rows.length === 0 ? 'No audit records match.' : null}
      >
        {rows.map((r) => (
          <tr key={r.id} className={trCls} data-testid="audit-row" data-action={r.action} data-result={r.result}>
            <td className={`${tdCls} text-slate-500`}>
              <RelTime date={r.at} />
            </td>
            <td className={tdCls} title={r.credential ?? undefined}>
              {who(r)}
            </td>
            <td className={`${tdCls} text-slate-500`}>{r.door}</td>
            <td className={tdCls}>
              <Mono>{r.action}</Mono>
            </td>
            <td className={`${tdCls} max-w-48`}>
              <Mono className="block truncate" title={r.target ?? undefined}>
                {r.target ?? '—'}
              </Mono>
            </td>
            <td className={`${tdCls} whitespace-pre-line text-slate-700`}>{r.summary || (r.error ?? '')}</td>
            <td className={tdCls} title={r.error ?? undefined}>
              <ResultBadge result={r.result} />
            </td>
            <td className={`${tdCls} text-slate-500`} title={r.userAgent ?? undefined}>
              {r.sourceIp}
            </td>
          </tr>
        ))}
      </DataTable>
      {next || cursors.length ? (
        <div className="flex gap-2 border-t border-slate-100 px-4 py-2">
          <Button onClick={() => setCursors([])} disabled={!cursors.length}>
            Newest
          </Button>
          <Button onClick={() => next && setCursors([...cursors, next])} disabled={!next}>
            Older
          </Button>
        </div>
      ) : null}
    </Panel>
  )
}
