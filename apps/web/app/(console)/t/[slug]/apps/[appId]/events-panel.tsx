'use client'
import { useQuery } from '@tanstack/react-query'
import { EventsTable } from '@/components/events-table'
import { ErrorBox, Panel } from '@/components/ui'
import { useTenant } from '@/lib/session'
import { useTRPC, type TAppDetail } from '@/lib/trpc'

/** The tenant's latest events about this app. */
export function AppEventsPanel({ app: a }: { app: TAppDetail }) {
  const trpc = useTRPC()
  const tenant = useTenant()
  const events = useQuery(trpc.events.list.queryOptions({ tenantId: tenant.id, limit: 200 }))
  const appEvents = (events.data ?? []).filter((e) => e.subject === `app/${a.name}`).slice(0, 20)
  return (
    <Panel title="Recent events">
      {events.error ? <ErrorBox error={events.error} className="m-3" /> : <EventsTable events={appEvents} showSubject={false} empty="No events for this app yet." />}
    </Panel>
  )
}
