'use client'
import { DataTable } from '@/components/data-table'
import { Panel, WarnIcon } from '@/components/ui'
import type { TAppDetail, TInstance } from '@/lib/trpc'
import { InstanceRow } from './instance-row'

/** The app's instances, running ones first (`instances` is that order), under a summary of why any wait. */
export function InstancesPanel({ app: a, instances }: { app: TAppDetail; instances: TInstance[] }) {
  return (
    <Panel title={`Instances (${a.instances.length})`} className="mb-5" testId="instances">
      <PendingSummary instances={a.instances} />
      <DataTable
        testId="instances-table"
        columns={[
          { label: '#', className: 'w-12' },
          { label: 'ID' },
          { label: 'Node' },
          { label: 'IP' },
          { label: 'State' },
          { label: 'URL' },
          { label: 'Health' },
          { label: 'Restarts', className: 'text-right' },
          { label: 'Limits' },
          { label: 'Started' },
          { label: 'Exit / message' },
        ]}
        empty={instances.length === 0 ? <>No instances{a.replicas === 0 ? ': scaled to 0.' : ' yet.'}</> : null}
      >
        {instances.map((i) => (
          <InstanceRow key={i.id} i={i} />
        ))}
      </DataTable>
    </Panel>
  )
}

/** Why replicas wait, grouped by reason, above the table: the first thing to read when an app is stuck. */
function PendingSummary({ instances }: { instances: TInstance[] }) {
  const byReason = new Map<string, number[]>()
  for (const i of instances)
    if (i.desiredState === 'running' && i.state === 'pending' && i.pendingReason) byReason.set(i.pendingReason, [...(byReason.get(i.pendingReason) ?? []), i.ordinal])
  if (!byReason.size) return null
  const count = [...byReason.values()].reduce((n, o) => n + o.length, 0)
  return (
    <div className="flex gap-2.5 border-b border-amber-200 bg-amber-50 px-4 py-2.5 text-sm text-amber-900" role="status" data-testid="pending-summary">
      <WarnIcon className="mt-0.5 size-4 text-amber-600" />
      <div className="min-w-0">
        <div className="font-semibold">
          {count} {count === 1 ? 'replica is' : 'replicas are'} waiting for a node
        </div>
        <ul className="mt-0.5 space-y-0.5">
          {[...byReason.entries()].map(([reason, ordinals]) => (
            <li key={reason} className="break-words">
              <span className="font-medium">{reason}</span>
              <span className="text-amber-700"> — {ordinals.sort((x, y) => x - y).map((o) => `#${o}`).join(', ')}</span>
            </li>
          ))}
        </ul>
      </div>
    </div>
  )
}
