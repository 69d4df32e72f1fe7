'use client'
import { MovingBadge } from '@/components/moves'
import { HealthCell } from '@/components/rollout'
import { Mono, RelTime, StateBadge, tdCls, trCls, WarnIcon } from '@/components/ui'
import { OverSizeBadge } from '@/components/volumes'
import { fmtCpu, fmtMem, shortId } from '@/lib/format'
import type { TInstance } from '@/lib/trpc'
import { LastExitLine, OomBadge } from '@/components/last-exit'

/** One instance: where it runs, its state and health, and how its last run ended. */
export function InstanceRow({ i }: { i: TInstance }) {
  const leaving = i.desiredState === 'stopped' && i.state !== 'stopped' && i.state !== 'exited'
  const shown = leaving && i.state === 'running' ? 'stopping' : i.state
  // A placed instance that waits (its node is lost and its volume is there) says why here.
  const exit = [i.exitCode !== null ? `exit ${i.exitCode}` : null, i.node ? i.pendingReason : null, i.message].filter(Boolean).join(' · ')
  const waiting = i.state === 'pending' && i.desiredState === 'running' && !!i.pendingReason
  const lastExit = i.lastExit && i.state !== 'exited' && i.state !== 'stopped' ? i.lastExit : null
  return (
    <tr
      className={`${trCls} ${i.desiredState === 'stopped' ? 'text-slate-400' : ''} ${waiting ? 'bg-amber-50/40' : ''}`}
      data-testid="instance-row"
      data-state={i.state}
      data-desired={i.desiredState}
      data-instance-id={i.id}
      data-node-name={i.node?.name ?? ''}
    >
      <td className={`${tdCls} font-medium text-slate-700`}>#{i.ordinal}</td>
      <td className={tdCls}>
        <Mono title={i.id}>{shortId(i.id)}</Mono>
        <span className="ml-1.5 text-[11px] text-slate-400" data-testid="instance-revision">
          rev {i.revision}
        </span>
      </td>
      <td className={tdCls} data-testid="instance-node">
        {i.node ? <span title={i.node.address}>{i.node.name}</span> : <span className={waiting ? 'text-amber-700' : 'text-slate-400'}>{waiting ? 'not placed' : '—'}</span>}
      </td>
      <td className={tdCls} data-testid="instance-ip">
        {i.ip ? <Mono title="Address on the app's tenant network: kept across restarts and moves">{i.ip}</Mono> : <span className="text-slate-400" title="Host networking">host</span>}
      </td>
      {waiting ? (
        // The reason is what an operator needs here: it gets the URL column's room too.
        <td className={tdCls} colSpan={2}>
          <div className="flex items-center gap-2">
            <StateBadge state={shown} testId="instance-state" />
            <span
              className="inline-flex min-w-0 items-center gap-1.5 rounded-md bg-amber-100/70 px-2 py-1 text-xs font-medium text-amber-900 ring-1 ring-inset ring-amber-300"
              data-testid="pending-reason"
              title={i.pendingReason ?? undefined}
            >
              <WarnIcon />
              <span className="min-w-0 break-words">{i.pendingReason}</span>
            </span>
          </div>
        </td>
      ) : (
        <>
          <td className={tdCls}>
            <span className="flex flex-wrap items-center gap-1.5">
              <StateBadge state={shown} testId="instance-state" tone={i.state === 'exited' && i.exitCode !== 0 && i.exitCode !== null ? 'red' : undefined} />
              {i.moving ? <MovingBadge step={i.moving.step} moveId={i.moving.moveId} /> : null}
              <OverSizeBadge instance={i} />
              {i.lastExit?.reason === 'oomKilled' ? <OomBadge lastExit={i.lastExit} /> : null}
            </span>
          </td>
          <td className={tdCls}>
            {i.url && i.desiredState === 'running' ? (
              <a href={i.url} target="_blank" rel="noreferrer" className="font-mono text-[12px] text-sky-700 hover:underline" data-testid="instance-url">
                {i.url.replace(/^https?:\/\//, '')}
              </a>
            ) : (
              <span className="text-slate-400">—</span>
            )}
          </td>
        </>
      )}
      <td className={tdCls}>
        {i.desiredState === 'running' ? (
          <HealthCell ready={i.ready} draining={i.draining} message={i.healthMessage} failedAt={i.healthFailedAt} />
        ) : (
          <span className="text-slate-400">—</span>
        )}
      </td>
      <td className={`${tdCls} text-right`}>{i.restarts > 0 ? <span className="font-medium text-amber-700">{i.restarts}</span> : <span>0</span>}</td>
      <td className={`${tdCls} whitespace-nowrap text-xs tabular-nums text-slate-600`} data-testid="instance-limits" title="Limits of the revision it runs: cpu, memory, processes and threads">
        {fmtCpu(i.limits.cpuMillis)} · {fmtMem(i.limits.memoryMb)} · {i.limits.pidsMax === null ? 'node pids' : `${i.limits.pidsMax} pids`}
      </td>
      <td className={tdCls}>
        <RelTime date={i.startedAt} className="text-slate-500" />
      </td>
      <td className={`${tdCls} max-w-72`}>
        {exit ? (
          <span className={`block truncate text-xs ${i.state === 'failed' ? 'text-red-700' : 'text-slate-500'}`} title={exit}>
            {exit}
          </span>
        ) : lastExit ? null : (
          <span className="text-slate-400">—</span>
        )}
        {lastExit ? <LastExitLine lastExit={lastExit} /> : null}
      </td>
    </tr>
  )
}
