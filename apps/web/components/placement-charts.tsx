'use client'
import { useQuery } from '@tanstack/react-query'
import clsx from 'clsx'
import { useState } from 'react'
import { Area, AreaChart, CartesianGrid, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts'
import { fmtNum, shortId } from '@/lib/format'
import { useTRPC, type RouterOutputs } from '@/lib/trpc'
import { DataTable } from './data-table'
import { Panel, tdCls, trCls } from './ui'

type Sample = RouterOutputs['nodes']['schedulerSeries'][number]

const WINDOW_MIN = 15
const BUCKET_MS = 10_000
/** Tenants drawn by name; the rest are summed as "others". */
const TOP = 5
/** Table rows shown before "show all". */
const TABLE_ROWS = 10
const COLORS = ['#0ea5e9', '#8b5cf6', '#10b981', '#f59e0b', '#f43f5e']
const OTHERS = '#94a3b8'

interface TenantSummary {
  tenantId: string
  placed: number
  peakPerSec: number
  last: Sample
  maxP99: number
}

/** Per tenant over the window: total placed, the busiest 10 s, the latest bucket and the worst p99. */
function summarize(rows: readonly Sample[]): TenantSummary[] {
  const by = new Map<string, TenantSummary>()
  for (const r of rows) {
    const s = by.get(r.tenantId) ?? { tenantId: r.tenantId, placed: 0, peakPerSec: 0, last: r, maxP99: 0 }
    s.placed += r.placed
    s.peakPerSec = Math.max(s.peakPerSec, r.placed / (BUCKET_MS / 1000))
    if (new Date(r.at) >= new Date(s.last.at)) s.last = r
    s.maxP99 = Math.max(s.maxP99, r.p99Ms)
    by.set(r.tenantId, s)
  }
  return [...by.values()].sort((a, b) => b.placed - a.placed || a.tenantId.localeCompare(b.tenantId))
}

/** One point per 10 s bucket of the window (0 where nothing was placed): placements/s of each drawn tenant and of the others together. */
function ratePoints(rows: readonly Sample[], drawn: readonly string[], now: number) {
  const byT = new Map<number, Record<string, number>>()
  const zero = (t: number) => Object.fromEntries([['t', t], ...[...drawn, 'others'].map((k) => [k, 0])])
  const first = Math.ceil((now - WINDOW_MIN * 60_000) / BUCKET_MS) * BUCKET_MS
  for (let t = first; t + BUCKET_MS <= now; t += BUCKET_MS) byT.set(t, zero(t))
  for (const r of rows) {
    const t = new Date(r.at).getTime()
    const p = byT.get(t) ?? zero(t)
    const key = drawn.includes(r.tenantId) ? r.tenantId : 'others'
    p[key] = (p[key] ?? 0) + r.placed / (BUCKET_MS / 1000)
    byT.set(t, p)
  }
  return [...byT.values()].sort((a, b) => a.t! - b.t!)
}

/** One point per bucket with `<tenant>:p50` and `<tenant>:p99` of each drawn tenant that placed something then. */
function latencyPoints(rows: readonly Sample[], drawn: readonly string[]) {
  const byT = new Map<number, Record<string, number>>()
  for (const r of rows) {
    if (!drawn.includes(r.tenantId)) continue
    const t = new Date(r.at).getTime()
    const p = byT.get(t) ?? { t }
    p[`${r.tenantId}:p50`] = r.p50Ms
    p[`${r.tenantId}:p99`] = r.p99Ms
    byT.set(t, p)
  }
  return [...byT.values()].sort((a, b) => a.t! - b.t!)
}

const fmtMs = (ms: number) => (ms >= 10_000 ? `${Math.round(ms / 1000)} s` : ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`)
const fmtRate = (n: number) => (n >= 100 ? fmtNum(Math.round(n)) : n >= 1 ? n.toFixed(1).replace(/\.0$/, '') : n.toFixed(2).replace(/\.?0+$/, ''))
/** Axis labels: short, on one line ("40ms", "1.5s"). */
const fmtMsAxis = (ms: number) => fmtMs(ms).replace(' ', '')
const hhmm = (t: number) => new Date(t).toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit' })

function TimeAxis({ now }: { now: number }) {
  const from = now - WINDOW_MIN * 60_000
  const step = 5 * 60_000
  const ticks = Array.from({ length: 4 }, (_, i) => Math.ceil(from / step) * step + i * step).filter((t) => t <= now)
  return <XAxis dataKey="t" type="number" domain={[from, now]} ticks={ticks} allowDataOverflow tickFormatter={hhmm} tick={{ fontSize: 10, fill: '#64748b' }} tickLine={false} axisLine={false} />
}

/**
 * The scheduler's placements/s and time-to-placement p50/p99 per tenant over the last 15
 * minutes, from samples the leader writes every 10 s (so every BFF can show them), kept live
 * by the fleet subscription. Click a tenant to draw only its lines.
 */
export function PlacementCharts({ slugOf }: { slugOf: ReadonlyMap<string, string> }) {
  const trpc = useTRPC()
  const series = useQuery(trpc.nodes.schedulerSeries.queryOptions({ minutes: WINDOW_MIN }, { refetchInterval: 30_000 }))
  const [selected, setSelected] = useState<string | null>(null)
  const [allRows, setAllRows] = useState(false)
  const rows = series.data ?? []
  const tenants = summarize(rows)
  const top = tenants.slice(0, TOP).map((t) => t.tenantId)
  const drawn = selected ? [selected] : top
  const colorOf = (id: string) => COLORS[Math.max(0, top.indexOf(id)) % COLORS.length]!
  const name = (id: string) => slugOf.get(id) ?? shortId(id)
  const now = series.dataUpdatedAt || Date.now()
  const rates = ratePoints(rows, drawn, now)
  const latencies = latencyPoints(rows, drawn)
  const hasOthers = !selected && tenants.length > TOP

  return (
    <Panel
      className="mb-5"
      testId="scheduler-charts"
      title={
        <>
          Placements and time to placement <span className="font-normal text-slate-500">· last {WINDOW_MIN} min, per tenant</span>
        </>
      }
      actions={
        selected ? (
          <button type="button" className="text-xs font-medium text-sky-700 hover:underline" onClick={() => setSelected(null)} data-testid="scheduler-charts-all">
            Show the top {TOP} tenants
          </button>
        ) : null
      }
    >
      {rows.length === 0 && !series.isPending ? (
        <div className="px-4 py-6 text-sm text-slate-500" data-testid="scheduler-charts-empty">
          No placements in the last {WINDOW_MIN} minutes. The leader writes a sample for every tenant it placed instances for, every 10 s.
        </div>
      ) : (
        <>
          <div className="flex flex-col gap-6 p-4 lg:flex-row">
            <div className="min-w-0 flex-1">
              <div className="mb-1 px-1 text-xs font-medium uppercase tracking-wide text-slate-500">Placements per second</div>
              <div className="h-44">
                <ResponsiveContainer width="100%" height="100%">
                  <AreaChart data={rates} margin={{ top: 8, right: 4, bottom: 0, left: 0 }}>
                    <CartesianGrid stroke="#e2e8f0" vertical={false} />
                    <TimeAxis now={now} />
                    <YAxis width={48} tickFormatter={fmtRate} tick={{ fontSize: 10, fill: '#64748b' }} tickLine={false} axisLine={false} />
                    <Tooltip labelFormatter={(t) => new Date(Number(t)).toLocaleTimeString('en-GB')} formatter={(v, key) => [`${fmtRate(Number(v))}/s`, key === 'others' ? 'other tenants' : name(String(key))]} contentStyle={{ fontSize: 12, borderRadius: 6, borderColor: '#e2e8f0' }} />
                    {drawn.map((id) => (
                      <Area key={id} type="stepAfter" dataKey={id} stackId="rate" stroke={colorOf(id)} strokeOpacity={0.8} fill={colorOf(id)} fillOpacity={0.3} strokeWidth={1} isAnimationActive={false} />
                    ))}
                    {hasOthers ? <Area type="stepAfter" dataKey="others" stackId="rate" stroke={OTHERS} fill={OTHERS} fillOpacity={0.2} strokeWidth={1} isAnimationActive={false} /> : null}
                  </AreaChart>
                </ResponsiveContainer>
              </div>
            </div>
            <div className="min-w-0 flex-1">
              <div className="mb-1 flex items-baseline justify-between px-1 text-xs font-medium uppercase tracking-wide text-slate-500">
                <span>Time to placement</span>
                <span className="normal-case tracking-normal text-slate-400">p99 solid · p50 dashed · log scale</span>
              </div>
              <div className="h-44">
                <ResponsiveContainer width="100%" height="100%">
                  <LineChart data={latencies} margin={{ top: 8, right: 4, bottom: 0, left: 0 }}>
                    <CartesianGrid stroke="#e2e8f0" vertical={false} />
                    <TimeAxis now={now} />
                    <YAxis width={48} scale="log" domain={[1, (max: number) => Math.max(10, max * 2)]} allowDataOverflow tickFormatter={fmtMsAxis} tick={{ fontSize: 10, fill: '#64748b' }} tickLine={false} axisLine={false} />
                    <Tooltip
                      labelFormatter={(t) => new Date(Number(t)).toLocaleTimeString('en-GB')}
                      formatter={(v, key) => {
                        const [id, q] = String(key).split(':')
                        return [fmtMs(Number(v)), `${name(id!)} ${q}`]
                      }}
                      contentStyle={{ fontSize: 12, borderRadius: 6, borderColor: '#e2e8f0' }}
                    />
                    {drawn.flatMap((id) => [
                      // Dots too: a tenant that placed in one 10 s bucket only has one point.
                      <Line key={`${id}:p99`} type="monotone" dataKey={`${id}:p99`} stroke={colorOf(id)} strokeWidth={1.5} dot={{ r: 2, strokeWidth: 0, fill: colorOf(id) }} connectNulls={false} isAnimationActive={false} />,
                      <Line key={`${id}:p50`} type="monotone" dataKey={`${id}:p50`} stroke={colorOf(id)} strokeWidth={1.5} strokeDasharray="4 3" dot={{ r: 2, fill: '#fff' }} connectNulls={false} isAnimationActive={false} />,
                    ])}
                  </LineChart>
                </ResponsiveContainer>
              </div>
            </div>
          </div>
          <DataTable
            query={series}
            testId="scheduler-tenants-table"
            columns={[
              { label: 'Tenant' },
              { label: 'Placed', className: 'text-right', title: `instances placed in the last ${WINDOW_MIN} minutes` },
              { label: 'Peak', className: 'text-right', title: 'placements per second in the busiest 10 s' },
              { label: 'p50', className: 'text-right', title: 'median time from queued to committed, latest 10 s with placements' },
              { label: 'p99', className: 'text-right', title: '99th percentile time to placement, latest 10 s with placements' },
              { label: 'Worst p99', className: 'text-right', title: `highest p99 of any 10 s in the last ${WINDOW_MIN} minutes` },
            ]}
          >
            {(allRows ? tenants : tenants.slice(0, TABLE_ROWS)).map((t) => (
              <tr
                key={t.tenantId}
                className={clsx(trCls, 'cursor-pointer', selected === t.tenantId && 'bg-sky-50/70')}
                onClick={() => setSelected(selected === t.tenantId ? null : t.tenantId)}
                aria-selected={selected === t.tenantId}
                data-testid="scheduler-tenant-row"
                data-tenant={name(t.tenantId)}
                data-placed={t.placed}
                data-p99={t.last.p99Ms}
              >
                <td className={tdCls}>
                  <span className="inline-flex items-center gap-2">
                    <span className="size-2 rounded-full" style={{ background: top.includes(t.tenantId) ? colorOf(t.tenantId) : OTHERS }} />
                    <span className="font-mono text-[12px] font-medium text-slate-900">{name(t.tenantId)}</span>
                  </span>
                </td>
                <td className={`${tdCls} text-right font-medium`}>{fmtNum(t.placed)}</td>
                <td className={`${tdCls} text-right`}>{fmtRate(t.peakPerSec)}/s</td>
                <td className={`${tdCls} text-right`}>{fmtMs(t.last.p50Ms)}</td>
                <td className={`${tdCls} text-right`}>{fmtMs(t.last.p99Ms)}</td>
                <td className={clsx(tdCls, 'text-right', t.maxP99 >= 1000 && 'font-medium text-amber-700')}>{fmtMs(t.maxP99)}</td>
              </tr>
            ))}
          </DataTable>
          {tenants.length > TABLE_ROWS ? (
            <div className="border-t border-slate-100 px-4 py-2 text-xs">
              <button type="button" className="font-medium text-sky-700 hover:underline" onClick={() => setAllRows(!allRows)} data-testid="scheduler-tenants-more">
                {allRows ? `Show the first ${TABLE_ROWS}` : `Show all ${tenants.length} tenants`}
              </button>
            </div>
          ) : null}
        </>
      )}
    </Panel>
  )
}
