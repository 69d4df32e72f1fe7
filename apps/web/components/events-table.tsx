'use client'
import { DataTable } from './data-table'
import { Badge, Mono, RelTime, tdCls, trCls } from './ui'
import type { TEvent } from '@/lib/trpc'

function typeTone(type: string) {
  if (/(failed|not_ready|removed|deleted|exceeded)/.test(type)) return 'red' as const
  if (/(created|joined|added|uncordoned)/.test(type)) return 'green' as const
  if (/(scaled|quotas|role|cordoned)/.test(type)) return 'blue' as const
  return 'gray' as const
}

export function EventsTable({ events, showSubject = true, empty = 'No events yet.' }: { events: TEvent[]; showSubject?: boolean; empty?: string }) {
  return (
    <DataTable
      testId="events-table"
      columns={[{ label: 'When', className: 'w-28' }, { label: 'Kind', className: 'w-20' }, { label: 'Type', className: 'w-40' }, ...(showSubject ? [{ label: 'Subject' }] : []), { label: 'Message' }]}
      empty={events.length === 0 ? empty : null}
    >
      {events.map((e) => (
        <tr key={e.id} className={trCls} data-testid="event-row" data-type={e.type}>
          <td className={`${tdCls} text-slate-500`}>
            <RelTime date={e.createdAt} />
          </td>
          <td className={tdCls}>
            <span className={e.kind === 'audit' ? 'text-violet-700' : 'text-slate-500'}>{e.kind}</span>
          </td>
          <td className={tdCls}>
            <Badge tone={typeTone(e.type)}>{e.type}</Badge>
          </td>
          {showSubject ? (
            <td className={`${tdCls} max-w-64`}>
              <Mono className="block truncate" title={e.subject}>
                {e.subject}
              </Mono>
            </td>
          ) : null}
          <td className={`${tdCls} text-slate-700`}>{e.message}</td>
        </tr>
      ))}
    </DataTable>
  )
}
