'use client'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import Link from 'next/link'
import { useParams, useRouter } from 'next/navigation'
import { useEffect, useState, type ReactNode } from 'react'
import { appDetailState } from '@/components/app-state'
import { DataTable } from '@/components/data-table'
import { EventsTable } from '@/components/events-table'
import { LogsPanel } from '@/components/logs'
import { MovingBadge } from '@/components/moves'
import { HealthCell, NewRevision, Revisions, RolloutStatus } from '@/components/rollout'
import { AppUsage } from '@/components/usage-chart'
import { OverSizeBadge, VolumesPanel } from '@/components/volumes'
import {
  Badge,
  Button,
  ConfirmButton,
  ErrorBox,
  inputBase,
  KV,
  Loading,
  Mono,
  PageHeader,
  Panel,
  RelTime,
  StateBadge,
  tdCls,
  trCls,
} from '@/components/ui'
import { fmtCpu, fmtDateTime, fmtMem, relTime, shortId } from '@/lib/format'
import { useNow } from '@/lib/use-now'
import { useTenant } from '@/lib/session'
import { errorCode, useTRPC, type TAppDetail, type TInstance } from '@/lib/trpc'

const SPREAD_TITLE: Record<string, string> = {
  none: 'replicas may share a node freely',
  soft: 'replicas prefer different nodes',
  hard: 'never two replicas on one node',
}

const STATE_ORDER = ['running', 'starting', 'pending', 'stopping', 'failed', 'exited', 'unknown', 'stopped'] as const

function ReplicaProgress({ app }: { app: TAppDetail }) {
  const active = app.instances.filter((i) => i.desiredState === 'running')
  const counts = new Map<string, number>()
  for (const i of active) counts.set(i.state, (counts.get(i.state) ?? 0) + 1)
  const stopping = app.instances.filter((i) => i.desiredState === 'stopped' && i.state !== 'stopped' && i.state !== 'exited').length
  const desired = app.replicas
  const pct = (n: number) => (desired > 0 ? (n / desired) * 100 : 0)
  const segment: Record<string, string> = { running: 'bg-emerald-500', starting: 'bg-amber-400', pending: 'bg-amber-200', failed: 'bg-red-500' }
  return (
    <div data-testid="replica-progress">
      <div className="mb-2 flex items-baseline gap-2">
        <span className="text-3xl font-semibold tabular-nums text-slate-900" data-testid="running-count">
          {app.running}
        </span>
        <span className="text-sm text-slate-500">
          of <span className="font-medium tabular-nums text-slate-800" data-testid="desired-count">{desired}</span> replicas running
        </span>
      </div>
      <div className="flex h-2.5 w-full overflow-hidden rounded-full bg-slate-200">
        {(['running', 'starting', 'pending', 'failed'] as const).map((s) => {
          const n = counts.get(s) ?? 0
          return n ? <div key={s} className={`h-full ${segment[s]} transition-[width] duration-500`} style={{ width: `${Math.min(100, pct(n))}%` }} /> : null
        })}
      </div>
      <div className="mt-2 flex flex-wrap gap-x-4 gap-y-1 text-xs tabular-nums text-slate-500">
        {STATE_ORDER.filter((s) => counts.get(s)).map((s) => (
          <span key={s}>
            <span className="font-medium text-slate-700">{counts.get(s)}</span> {s}
          </span>
        ))}
        {stopping ? (
          <span>
            <span className="font-medium text-slate-700">{stopping}</span> stopping
          </span>
        ) : null}
        {!active.length && !stopping ? <span>no active instances</span> : null}
      </div>
    </div>
  )
}

function ScaleControl({ app }: { app: TAppDetail }) {
  const trpc = useTRPC()
  const tenant = useTenant()
  const qc = useQueryClient()
  const [value, setValue] = useState(String(app.replicas))
  const [dirty, setDirty] = useState(false)
  useEffect(() => {
    if (!dirty) setValue(String(app.replicas))
  }, [app.replicas, dirty])
  const scale = useMutation(
    trpc.apps.scale.mutationOptions({
      onSuccess: async () => {
        setDirty(false)
        await qc.invalidateQueries({ queryKey: trpc.apps.pathKey() })
        await qc.invalidateQueries({ queryKey: trpc.tenants.usage.pathKey() })
      },
    }),
  )
  const n = Number(value)
  const valid = value.trim() !== '' && Number.isInteger(n) && n >= 0 && n <= 1000
  return (
    <div>
      <form
        className="flex items-center gap-2"
        onSubmit={(e) => {
          e.preventDefault()
          if (valid) scale.mutate({ tenantId: tenant.id, appId: app.id, replicas: n })
        }}
      >
        <label htmlFor="scale" className="text-sm text-slate-600">
          Replicas
        </label>
        <input
          id="scale"
          type="number"
          min={0}
          max={1000}
          value={value}
          onChange={(e) => {
            setValue(e.target.value)
            setDirty(true)
            scale.reset()
          }}
          disabled={!tenant.canDeploy || app.deleting}
          className={`${inputBase} w-24 tabular-nums`}
          aria-invalid={!valid}
          data-testid="scale-input"
        />
        <Button type="submit" variant="primary" disabled={!tenant.canDeploy || app.deleting || !valid || n === app.replicas || scale.isPending} data-testid="scale-apply">
          {scale.isPending ? 'Applying…' : 'Apply'}
        </Button>
      </form>
      {!valid ? <p className="mt-1.5 text-xs text-red-600">A whole number from 0 to 1000</p> : null}
      <ErrorBox error={scale.error} className="mt-2" />
    </div>
  )
}

function WarnIcon({ className = 'size-3.5' }: { className?: string }) {
  return (
    <svg viewBox="0 0 20 20" fill="currentColor" className={`${className} shrink-0`} aria-hidden="true">
      <path d="M10 2 1 18h18L10 2zm-1 6h2v5H9V8zm0 6h2v2H9v-2z" />
    </svg>
  )
}

type TLastExit = NonNullable<TInstance['lastExit']>

const EXIT_REASON: Record<TLastExit['reason'], string> = {
  exited: 'exited',
  signaled: 'killed by a signal',
  oomKilled: 'OOM killed',
  unhealthy: 'restarted after failed liveness checks',
  stopped: 'stopped by the node',
  lost: 'ended while no agent watched it',
}

const lastExitTitle = (e: TLastExit) =>
  [EXIT_REASON[e.reason], e.exitCode === null ? null : `exit code ${e.exitCode}`, e.signal, fmtDateTime(e.at)].filter(Boolean).join(' · ') + `\n${e.message}`

/** Its last run was killed at its memory limit: said even while it runs again ("OOM killed 2m ago"). */
function OomBadge({ lastExit }: { lastExit: TLastExit }) {
  const now = useNow()
  return (
    <Badge tone="red" title={lastExit.message} data-testid="instance-oom" data-at={new Date(lastExit.at).toISOString()}>
      OOM killed{now === null ? '' : ` ${relTime(lastExit.at, now)}`}
    </Badge>
  )
}

/** How the previous run ended, under the current state's message (exited or stopped: that message is this exit). */
function LastExitLine({ lastExit }: { lastExit: TLastExit }) {
  const now = useNow()
  return (
    <span className="block truncate text-xs text-slate-500" title={lastExitTitle(lastExit)} data-testid="instance-last-exit" data-reason={lastExit.reason}>
      <span className="font-medium text-slate-600">last exit{now === null ? '' : ` ${relTime(lastExit.at, now)}`}:</span> {lastExit.message}
    </span>
  )
}

function InstanceRow({ i }: { i: TInstance }) {
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

export default function AppDetailPage() {
  const { appId } = useParams<{ appId: string }>()
  const trpc = useTRPC()
  const tenant = useTenant()
  const router = useRouter()
  const qc = useQueryClient()
  const app = useQuery(trpc.apps.get.queryOptions({ tenantId: tenant.id, appId }))
  const events = useQuery(trpc.events.list.queryOptions({ tenantId: tenant.id, limit: 200 }))
  const tenantInfo = useQuery(trpc.tenants.get.queryOptions({ tenantId: tenant.id }, { staleTime: 60_000 }))
  const del = useMutation(
    trpc.apps.delete.mutationOptions({
      onSuccess: async () => {
        await qc.invalidateQueries({ queryKey: trpc.apps.pathKey() })
        router.push(`/t/${tenant.slug}/apps`)
      },
    }),
  )

  const back = (
    <Link href={`/t/${tenant.slug}/apps`} className="hover:underline">
      Apps
    </Link>
  )
  if (app.isPending) return <Loading />
  if (app.error)
    return (
      <>
        <PageHeader title="App" subtitle={back} />
        {errorCode(app.error) === 'NOT_FOUND' ? (
          <Panel bodyClassName="p-6 text-sm text-slate-600">This app does not exist (any more).</Panel>
        ) : (
          <ErrorBox error={app.error} />
        )}
      </>
    )
  const a = app.data
  const st = appDetailState(a)
  const appEvents = (events.data ?? []).filter((e) => e.subject === `app/${a.name}`).slice(0, 20)
  const volumeCount = new Set(a.instances.flatMap((i) => i.volumes.map((v) => v.id))).size
  const instances = [...a.instances].sort((x, y) => (x.desiredState === y.desiredState ? x.ordinal - y.ordinal : x.desiredState === 'running' ? -1 : 1))
  return (
    <>
      <title>{`${a.name} · ${tenant.name} · Alveary`}</title>
      <PageHeader
        title={<span data-testid="app-name">{a.name}</span>}
        badge={<StateBadge state={st.state} label={st.label} testId="app-state" />}
        subtitle={
          <>
            {back} / {a.name} · <span className="tabular-nums" data-testid="app-revision">revision {a.revision}</span> · <span className="tabular-nums">generation {a.generation}</span> · created{' '}
            <RelTime date={a.createdAt} />
          </>
        }
        actions={
          tenant.canDeploy && !a.deleting ? (
            <ConfirmButton
              label="Delete app"
              confirmLabel="Delete"
              question={`Delete ${a.name} and stop its ${a.instances.filter((i) => i.desiredState === 'running').length} instances?${volumeCount ? ` Its ${volumeCount} ${volumeCount === 1 ? 'volume is' : 'volumes are'} deleted with it: the data is lost.` : ''}`}
              onConfirm={() => del.mutate({ tenantId: tenant.id, appId: a.id })}
              pending={del.isPending}
              testId="delete-app"
            />
          ) : null
        }
      />
      <ErrorBox error={del.error} className="mb-4" />
      {a.deleting ? (
        <div className="mb-4 rounded-md border border-amber-200 bg-amber-50 px-3 py-2 text-sm text-amber-800">This app is being deleted: its instances are stopping.</div>
      ) : null}

      <div className="mb-5 grid gap-5 lg:grid-cols-[minmax(0,5fr)_minmax(0,7fr)]">
        <Panel title="Replicas" bodyClassName="space-y-5 p-4">
          <ReplicaProgress app={a} />
          <div className="border-t border-slate-100 pt-4">
            <ScaleControl app={a} />
          </div>
        </Panel>
        <Panel title="Spec" bodyClassName="p-4" testId="app-spec">
          <KV
            items={[
              ['Driver', <Badge key="d" tone={a.spec.driver === 'docker' ? 'blue' : 'violet'}>{a.spec.driver}</Badge>],
              ...(a.spec.image ? [['Image', <Mono key="i">{a.spec.image}</Mono>] as [string, ReactNode]] : []),
              [
                'Command',
                a.spec.command || a.spec.args.length ? (
                  <Mono key="c" className="break-all">
                    {[a.spec.command ?? '', ...a.spec.args.map((x) => (/\s/.test(x) || x === '' ? JSON.stringify(x) : x))].join(' ').trim()}
                  </Mono>
                ) : (
                  <span className="text-slate-400">image default</span>
                ),
              ],
              [
                'Resources',
                <span key="r" className="tabular-nums" data-testid="spec-limits">
                  {fmtCpu(a.spec.cpuMillis)} CPU · {fmtMem(a.spec.memoryMb)} · {a.spec.pidsMax === null ? 'node default' : a.spec.pidsMax} pids per replica
                  {a.spec.readOnlyRootfs ? ' · read-only root' : ''}
                </span>,
              ],
              ['Ports', a.spec.ports.length ? a.spec.ports.map((p) => (p.containerPort ? `${p.name}:${p.containerPort}` : p.name)).join(', ') : <span className="text-slate-400">none</span>],
              [
                'Restart',
                <span key="rp">
                  {a.spec.restartPolicy.replace('_', ' ')} · stop grace {a.spec.stopGraceSeconds}s
                </span>,
              ],
              [
                'Node selector',
                Object.keys(a.spec.nodeSelector).length ? (
                  <div key="ns" className="flex flex-wrap gap-1" data-testid="spec-node-selector">
                    {Object.entries(a.spec.nodeSelector).map(([k, v]) => (
                      <Mono key={k} className="rounded bg-slate-100 px-1.5 py-0.5">
                        {k}={v}
                      </Mono>
                    ))}
                  </div>
                ) : (
                  <span key="ns" className="text-slate-400" data-testid="spec-node-selector">
                    any node
                  </span>
                ),
              ],
              [
                'Scheduling',
                <span key="sc" className="flex flex-wrap items-center gap-x-1.5 gap-y-1" data-testid="spec-scheduling">
                  <span title={SPREAD_TITLE[a.spec.spread]} data-testid="spec-spread">
                    {a.spec.spread} spread
                  </span>
                  <span className="text-slate-300">·</span>
                  <span data-testid="spec-placement">
                    {a.spec.placementStrategy ?? `tenant default${tenantInfo.data ? ` (${tenantInfo.data.placementStrategy})` : ''}`} placement
                  </span>
                  <span className="text-slate-300">·</span>
                  <Badge tone={a.spec.priorityClass === 'critical' ? 'red' : a.spec.priorityClass === 'high' ? 'amber' : 'gray'} data-testid="spec-priority">
                    {a.spec.priorityClass} priority
                  </Badge>
                </span>,
              ],
              [
                'Network',
                a.network ? (
                  <Link key="net" href={`/t/${tenant.slug}/networks`} className="text-sky-700 hover:underline" data-testid="spec-network" title="Its instances keep their address on this network across restarts and moves">
                    {a.network.name}
                  </Link>
                ) : (
                  <span key="net" className="text-slate-400" data-testid="spec-network">
                    host networking
                  </span>
                ),
              ],
              [
                'Drains',
                <span key="mu" data-testid="spec-max-unavailable">
                  at most {a.spec.maxUnavailable} {a.spec.maxUnavailable === 1 ? 'replica' : 'replicas'} unavailable at once
                </span>,
              ],
              [
                'Volumes',
                a.spec.volumes.length ? (
                  <span key="vol" data-testid="spec-volumes">
                    {a.spec.volumes.map((v) => `${v.name} ${fmtMem(v.sizeMb)} ${v.driver} at ${v.mountPath}`).join(', ')}
                  </span>
                ) : (
                  <span key="vol" className="text-slate-400">
                    none{a.spec.stopAfterDisconnect ? ' · stops after disconnect' : ''}
                  </span>
                ),
              ],
              [
                'Environment',
                Object.keys(a.spec.env).length ? (
                  <div key="e" className="flex flex-wrap gap-1">
                    {Object.entries(a.spec.env).map(([k, v]) => (
                      <Mono key={k} className="rounded bg-slate-100 px-1.5 py-0.5" title={`${k}=${v}`}>
                        {k}={v.length > 24 ? `${v.slice(0, 24)}…` : v}
                      </Mono>
                    ))}
                  </div>
                ) : (
                  <span className="text-slate-400">none</span>
                ),
              ],
            ]}
          />
        </Panel>
      </div>

      {a.rollout || (tenant.canDeploy && !a.deleting) ? (
        <div className="mb-5 grid gap-5 lg:grid-cols-2">
          <Panel title="Rollout" bodyClassName="p-4" testId="rollout-panel">
            {a.rollout ? <RolloutStatus rollout={a.rollout} /> : <span className="text-sm text-slate-500">No rollout yet: a new revision replaces the instances one step at a time.</span>}
          </Panel>
          {tenant.canDeploy && !a.deleting ? (
            <Panel title="New revision" bodyClassName="p-4">
              <NewRevision key={a.revision} app={a} tenantId={tenant.id} />
            </Panel>
          ) : null}
        </div>
      ) : null}

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

      {a.spec.volumes.length ? <VolumesPanel instances={instances} /> : null}
      <Revisions app={a} tenantId={tenant.id} canDeploy={tenant.canDeploy && !a.deleting} />

      <AppUsage tenantId={tenant.id} appId={a.id} />

      <LogsPanel tenantId={tenant.id} appId={a.id} instances={instances} />

      <Panel title="Recent events">
        {events.error ? <ErrorBox error={events.error} className="m-3" /> : <EventsTable events={appEvents} showSubject={false} empty="No events for this app yet." />}
      </Panel>
    </>
  )
}
