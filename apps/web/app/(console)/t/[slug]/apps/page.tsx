'use client'
import { useQuery } from '@tanstack/react-query'
import Link from 'next/link'
import { appState } from '@/components/app-state'
import { DataTable } from '@/components/data-table'
import { QuotaUsage } from '@/components/quota'
import { ButtonLink, Mono, PageHeader, Panel, RelTime, StateBadge, tdCls, trCls, UsageBar } from '@/components/ui'
import { useTenant } from '@/lib/session'
import { useTRPC } from '@/lib/trpc'

export default function AppsPage() {
  const trpc = useTRPC()
  const tenant = useTenant()
  const apps = useQuery(trpc.apps.list.queryOptions({ tenantId: tenant.id }))
  return (
    <>
      <title>{`Apps · ${tenant.name} · Alveary`}</title>
      <PageHeader
        title="Apps"
        subtitle={`Applications deployed in ${tenant.name}`}
        actions={
          tenant.canDeploy ? (
            <ButtonLink href={`/t/${tenant.slug}/apps/new`} variant="primary" data-testid="deploy-app">
              <span className="text-base leading-none">+</span> Deploy app
            </ButtonLink>
          ) : null
        }
      />
      <QuotaUsage />
      <Panel>
        <DataTable
          query={apps}
          testId="apps-table"
          columns={[{ label: 'Name' }, { label: 'Status' }, { label: 'Driver' }, { label: 'Command / image' }, { label: 'Replicas', className: 'w-44' }, { label: 'Updated' }]}
          empty={
            apps.data?.length === 0 ? (
              <>
                No apps yet.{' '}
                {tenant.canDeploy ? (
                  <Link className="font-medium text-slate-900 underline" href={`/t/${tenant.slug}/apps/new`}>
                    Deploy the first one
                  </Link>
                ) : null}
              </>
            ) : null
          }
        >
          {apps.data?.map((a) => {
            const st = appState(a)
            return (
              <tr key={a.id} className={trCls} data-testid="app-row" data-app-name={a.name} data-running={a.running} data-replicas={a.replicas}>
                <td className={tdCls}>
                  <Link href={`/t/${tenant.slug}/apps/${a.id}`} className="font-medium text-slate-900 hover:underline">
                    {a.name}
                  </Link>
                </td>
                <td className={tdCls}>
                  <StateBadge state={st.state} label={st.label} />
                </td>
                <td className={tdCls}>
                  <span className="text-slate-600">{a.driver}</span>
                </td>
                <td className={`${tdCls} max-w-xs`}>
                  <Mono className="block truncate" title={a.image ?? a.command ?? ''}>
                    {a.driver === 'docker' ? a.image : a.command}
                  </Mono>
                </td>
                <td className={tdCls}>
                  <div className="flex items-center gap-2.5">
                    <span className="w-12 shrink-0 text-right font-medium">
                      {a.running}
                      <span className="text-slate-400">/{a.replicas}</span>
                    </span>
                    <UsageBar used={a.running} total={a.replicas} tone="sky" className="w-20" />
                  </div>
                </td>
                <td className={`${tdCls} text-slate-500`}>
                  <RelTime date={a.updatedAt} />
                </td>
              </tr>
            )
          })}
        </DataTable>
      </Panel>
    </>
  )
}
