'use client'
import { useQuery } from '@tanstack/react-query'
import { fmtCpu, fmtMem, fmtNum } from '@/lib/format'
import { useTenant } from '@/lib/session'
import { useTRPC } from '@/lib/trpc'
import { ErrorBox, Panel, UsageBar } from './ui'

export function QuotaUsage() {
  const trpc = useTRPC()
  const tenant = useTenant()
  const usage = useQuery(trpc.tenants.usage.queryOptions({ tenantId: tenant.id }))
  const u = usage.data
  const items = u
    ? [
        { key: 'cpu', label: 'CPU', used: u.used.cpuMillis, total: u.quotas.cpuMillis, fmt: fmtCpu },
        { key: 'memory', label: 'Memory', used: u.used.memoryMb, total: u.quotas.memoryMb, fmt: fmtMem },
        { key: 'instances', label: 'Instances', used: u.used.instances, total: u.quotas.instances, fmt: fmtNum },
        { key: 'apps', label: 'Apps', used: u.used.apps, total: u.quotas.apps, fmt: fmtNum },
      ]
    : []
  return (
    <Panel className="mb-5" testId="quota-usage">
      {usage.error ? <ErrorBox error={usage.error} className="m-3" /> : null}
      <div className="grid grid-cols-2 divide-slate-100 lg:grid-cols-4 lg:divide-x">
        {(u ? items : ['CPU', 'Memory', 'Instances', 'Apps'].map((label) => ({ key: label, label, used: 0, total: 0, fmt: String }))).map((it) => {
          const pct = it.total > 0 ? Math.round((it.used / it.total) * 100) : 0
          return (
            <div key={it.key} className="px-4 py-3" data-testid={`quota-${it.key}`}>
              <div className="mb-1.5 flex items-baseline justify-between gap-2">
                <span className="text-xs font-medium uppercase tracking-wide text-slate-500">{it.label}</span>
                {u ? <span className="text-xs tabular-nums text-slate-400">{pct}%</span> : null}
              </div>
              <div className="mb-2 text-sm tabular-nums text-slate-900">
                {u ? (
                  <>
                    <span className="font-semibold">{it.fmt(it.used)}</span>
                    <span className="text-slate-500"> of {it.fmt(it.total)}</span>
                  </>
                ) : (
                  <span className="text-slate-400">—</span>
                )}
              </div>
              <UsageBar used={it.used} total={it.total} />
            </div>
          )
        })}
      </div>
    </Panel>
  )
}
