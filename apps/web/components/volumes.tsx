'use client'
import { DataTable } from '@/components/data-table'
import { Badge, Mono, Panel, tdCls, trCls, UsageBar } from '@/components/ui'
import { fmtBytes, fmtMem, shortId } from '@/lib/format'
import type { TInstance } from '@/lib/trpc'

/** Each replica's volumes: where the data is, its fencing epoch, the space used of the size asked (measured every minute, not enforced). */
export function VolumesPanel({ instances }: { instances: TInstance[] }) {
  const rows = instances.flatMap((i) => i.volumes.map((v) => ({ i, v })))
  return (
    <Panel
      title="Volumes"
      className="mb-5"
      testId="volumes"
      actions={<span className="text-xs text-slate-500">kept across restarts and moves; deleted with the app</span>}
    >
      <DataTable
        testId="volumes-table"
        columns={[{ label: '#', className: 'w-12' }, { label: 'Volume' }, { label: 'Driver' }, { label: 'Data on' }, { label: 'Epoch', className: 'text-right' }, { label: 'Used' }]}
        empty={rows.length ? null : 'The volumes are created when the replicas are first placed.'}
      >
        {rows.map(({ i, v }) => {
          const size = v.sizeMb * 1024 * 1024
          const over = v.overSize
          return (
            <tr key={v.id} className={trCls} data-testid="volume-row" data-volume={v.name} data-epoch={v.epoch} data-over-size={over || undefined}>
              <td className={`${tdCls} font-medium text-slate-700`}>#{i.ordinal}</td>
              <td className={tdCls}>
                <span className="font-medium text-slate-900">{v.name}</span> <Mono title={v.id}>{shortId(v.id)}</Mono>
              </td>
              <td className={tdCls}>
                <Badge tone={v.driver === 'shared' ? 'blue' : 'gray'}>{v.driver}</Badge>
              </td>
              <td className={tdCls}>{v.node ?? <span className="text-slate-400">not attached yet</span>}</td>
              <td className={`${tdCls} text-right`} title="bumped on every attach: a node holding an older one is fenced">
                {v.epoch}
              </td>
              <td className={`${tdCls} w-64`}>
                {v.usedBytes === null ? (
                  <span className="text-xs text-slate-400">not measured yet · {fmtMem(v.sizeMb)}</span>
                ) : (
                  <div>
                    <div className={`mb-1 text-xs tabular-nums ${over ? 'font-medium text-red-700' : 'text-slate-600'}`}>
                      {fmtBytes(v.usedBytes)} of {fmtMem(v.sizeMb)}
                      {over ? ' — over its size (measured, not enforced)' : ''}
                    </div>
                    <UsageBar used={v.usedBytes} total={size} />
                  </div>
                )}
              </td>
            </tr>
          )
        })}
      </DataTable>
    </Panel>
  )
}

/** On an instance row: one of its volumes is measured over its size. */
export function OverSizeBadge({ instance }: { instance: TInstance }) {
  const over = instance.volumes.filter((v) => v.overSize)
  if (!over.length) return null
  return (
    <Badge tone="red" data-testid="over-size-badge" title={over.map((v) => `${v.name}: ${v.usedBytes === null ? '?' : fmtBytes(v.usedBytes)} of ${fmtMem(v.sizeMb)}`).join(', ')}>
      volume over size
    </Badge>
  )
}
