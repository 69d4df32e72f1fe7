'use client'
import { useQuery } from '@tanstack/react-query'
import { Area, AreaChart, CartesianGrid, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts'
import { fmtCpu, fmtMem } from '@/lib/format'
import { useTRPC } from '@/lib/trpc'
import { ErrorBox, Panel } from './ui'

type Point = { t: number; cpu: number; mem: number }

/** Sums the per-instance samples of the app into one series (samples share timestamps per agent tick). */
function sumSeries(series: { points: { ts: Date; cpuMillis: number; memoryMb: number }[] }[]): Point[] {
  const byTs = new Map<number, Point>()
  for (const s of series)
    for (const p of s.points) {
      // Bucket to 5 s so samples of different instances from one tick add up.
      const t = Math.round(new Date(p.ts).getTime() / 5000) * 5000
      const cur = byTs.get(t) ?? { t, cpu: 0, mem: 0 }
      cur.cpu += p.cpuMillis
      cur.mem += p.memoryMb
      byTs.set(t, cur)
    }
  return [...byTs.values()].sort((a, b) => a.t - b.t)
}

const hhmm = (t: number) => new Date(t).toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit' })
const WINDOW_MS = 15 * 60_000

function Chart({ data, dataKey, color, fmt, label, now }: { data: Point[]; dataKey: 'cpu' | 'mem'; color: string; fmt: (n: number) => string; label: string; now: number }) {
  const last = data.at(-1)?.[dataKey]
  // A fixed 15-minute axis with a tick every 5 minutes, whatever the samples cover.
  const from = now - WINDOW_MS
  const step = 5 * 60_000
  const ticks = Array.from({ length: 4 }, (_, i) => Math.ceil(from / step) * step + i * step).filter((t) => t <= now)
  return (
    <div className="min-w-0 flex-1">
      <div className="mb-1 flex items-baseline justify-between px-1">
        <span className="text-xs font-medium uppercase tracking-wide text-slate-500">{label}</span>
        <span className="text-sm font-semibold tabular-nums text-slate-800">{last === undefined ? '—' : fmt(last)}</span>
      </div>
      <div className="h-28">
        <ResponsiveContainer width="100%" height="100%">
          <AreaChart data={data} margin={{ top: 8, right: 4, bottom: 0, left: 0 }}>
            <CartesianGrid stroke="#e2e8f0" vertical={false} />
            <XAxis dataKey="t" type="number" domain={[from, now]} ticks={ticks} allowDataOverflow tickFormatter={hhmm} tick={{ fontSize: 10, fill: '#64748b' }} tickLine={false} axisLine={false} />
            <YAxis width={56} tickFormatter={(v: number) => fmt(v).replace(/ (cores?|MiB|GiB|TiB)$/, (_, u: string) => (u.startsWith('core') ? 'c' : u[0]!))} tick={{ fontSize: 10, fill: '#64748b' }} tickLine={false} axisLine={false} allowDecimals={false} />
            <Tooltip
              labelFormatter={(t) => new Date(Number(t)).toLocaleTimeString('en-GB')}
              formatter={(v) => [fmt(Number(v)), label]}
              contentStyle={{ fontSize: 12, borderRadius: 6, borderColor: '#e2e8f0' }}
            />
            <Area type="monotone" dataKey={dataKey} stroke={color} fill={color} fillOpacity={0.15} strokeWidth={1.5} isAnimationActive={false} />
          </AreaChart>
        </ResponsiveContainer>
      </div>
    </div>
  )
}

/** CPU and memory side by side, or a note when there are no samples yet. */
function ChartPair({ data, pending, now, empty }: { data: Point[]; pending: boolean; now: number; empty: string }) {
  if (data.length === 0 && !pending) return <div className="px-4 py-6 text-sm text-slate-500">{empty}</div>
  return (
    <div className="flex flex-col gap-6 p-4 md:flex-row">
      <Chart data={data} dataKey="cpu" color="#0ea5e9" fmt={fmtCpu} label="CPU" now={now} />
      <Chart data={data} dataKey="mem" color="#8b5cf6" fmt={fmtMem} label="Memory" now={now} />
    </div>
  )
}

/** Measured CPU and memory of all instances of an app, last 15 minutes. */
export function AppUsage({ tenantId, appId }: { tenantId: string; appId: string }) {
  const trpc = useTRPC()
  const metrics = useQuery(trpc.metrics.app.queryOptions({ tenantId, appId, minutes: 15 }, { refetchInterval: 10_000 }))
  const data = sumSeries(metrics.data ?? [])
  const now = metrics.dataUpdatedAt || Date.now()
  return (
    <Panel title="Measured usage · 15 min" className="mb-5" testId="app-usage">
      {metrics.error ? <ErrorBox error={metrics.error} className="m-3" /> : null}
      <ChartPair data={data} pending={metrics.isPending} now={now} empty="No samples yet: agents report usage every few seconds once instances run." />
    </Panel>
  )
}

/** Measured CPU and memory of one node (everything on it, as its agent reports), last 15 minutes. */
export function NodeUsage({ nodeId, className }: { nodeId: string; className?: string }) {
  const trpc = useTRPC()
  const metrics = useQuery(trpc.metrics.nodes.queryOptions({ nodeIds: [nodeId], minutes: 15 }, { refetchInterval: 10_000 }))
  // One sample per point: a node's samples are not summed (whatever their spacing).
  const data = (metrics.data?.find((s) => s.subjectId === nodeId)?.points ?? []).map((p) => ({ t: new Date(p.ts).getTime(), cpu: p.cpuMillis, mem: p.memoryMb }))
  const now = metrics.dataUpdatedAt || Date.now()
  return (
    <Panel title="Measured usage · 15 min" className={className} testId="node-usage">
      {metrics.error ? <ErrorBox error={metrics.error} className="m-3" /> : null}
      <ChartPair data={data} pending={metrics.isPending} now={now} empty="No samples yet: the agent reports its node's usage with its heartbeats." />
    </Panel>
  )
}
