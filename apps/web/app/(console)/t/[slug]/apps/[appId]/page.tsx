'use client'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import Link from 'next/link'
import { useParams, useRouter } from 'next/navigation'
import { appDetailState } from '@/components/app-state'
import { LogsPanel } from '@/components/logs'
import { NewRevision, Revisions, RolloutStatus } from '@/components/rollout'
import { AppUsage } from '@/components/usage-chart'
import { VolumesPanel } from '@/components/volumes'
import { ConfirmButton, ErrorBox, Loading, PageHeader, Panel, RelTime, StateBadge } from '@/components/ui'
import { useTenant } from '@/lib/session'
import { errorCode, useTRPC } from '@/lib/trpc'
import { AppEventsPanel } from './events-panel'
import { InstancesPanel } from './instances-panel'
import { ReplicasPanel } from './replicas-panel'
import { SpecPanel } from './spec-panel'

export default function AppDetailPage() {
  const { appId } = useParams<{ appId: string }>()
  const trpc = useTRPC()
  const tenant = useTenant()
  const router = useRouter()
  const qc = useQueryClient()
  const app = useQuery(trpc.apps.get.queryOptions({ tenantId: tenant.id, appId }))
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
        <ReplicasPanel app={a} />
        <SpecPanel app={a} />
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

      <InstancesPanel app={a} instances={instances} />

      {a.spec.volumes.length ? <VolumesPanel instances={instances} /> : null}
      <Revisions app={a} tenantId={tenant.id} canDeploy={tenant.canDeploy && !a.deleting} />

      <AppUsage tenantId={tenant.id} appId={a.id} />

      <LogsPanel tenantId={tenant.id} appId={a.id} instances={instances} />

      <AppEventsPanel app={a} />
    </>
  )
}
