'use client'
import { useQuery } from '@tanstack/react-query'
import clsx from 'clsx'
import { useState } from 'react'
import { EventsTable } from '@/components/events-table'
import { ErrorBox, Loading, PageHeader, Panel } from '@/components/ui'
import { useTenant } from '@/lib/session'
import { useTRPC } from '@/lib/trpc'

const FILTERS = ['all', 'audit', 'system'] as const

export default function EventsPage() {
  const trpc = useTRPC()
  const tenant = useTenant()
  const [kind, setKind] = useState<(typeof FILTERS)[number]>('all')
  const events = useQuery(trpc.events.list.queryOptions({ tenantId: tenant.id, limit: 200 }))
  const shown = (events.data ?? []).filter((e) => kind === 'all' || e.kind === kind)
  return (
    <>
      <title>{`Events · ${tenant.name} · Alveary`}</title>
      <PageHeader
        title="Events"
        subtitle="What happened in this tenant: audit trail of changes and system events, newest first."
        actions={
          <div className="inline-flex rounded-md border border-slate-300 bg-white p-0.5">
            {FILTERS.map((f) => (
              <button
                key={f}
                type="button"
                onClick={() => setKind(f)}
                className={clsx('rounded px-2.5 py-1 text-xs font-medium capitalize', kind === f ? 'bg-slate-900 text-white' : 'text-slate-600 hover:text-slate-900')}
              >
                {f}
              </button>
            ))}
          </div>
        }
      />
      <Panel>
        {events.error ? <ErrorBox error={events.error} className="m-3" /> : null}
        {events.isPending ? <Loading /> : <EventsTable events={shown} />}
      </Panel>
    </>
  )
}
