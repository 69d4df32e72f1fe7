'use client'
/** Rollouts and revisions of one app: the live rollout, the history with diffs, a new revision. */
import { useMutation, useQuery } from '@tanstack/react-query'
import { useState } from 'react'
import { parseArgs, parseEnv } from '@/lib/app-form'
import { Badge, Button, ErrorBox, inputBase, Mono, Panel, RelTime, type Tone } from '@/components/ui'
import { minReadySecondsOf, ZMinReadySeconds } from '@alveary/core/schemas'
import { useTRPC, type TAppDetail, type TRollout } from '@/lib/trpc'

const ROLLOUT_TONE: Record<TRollout['state'], Tone> = { progressing: 'blue', succeeded: 'green', rolled_back: 'amber', superseded: 'gray', failed: 'red' }
const KIND: Record<TRollout['kind'], string> = { update: 'Rollout', rollback: 'Rollback', auto_rollback: 'Automatic rollback' }

/** The rollout in progress (or the last one): old/new counts, the step, a progress bar. */
export function RolloutStatus({ rollout }: { rollout: TRollout }) {
  const live = rollout.state === 'progressing'
  const pct = rollout.replicas ? Math.round((rollout.newReady / rollout.replicas) * 100) : 100
  return (
    <div data-testid="rollout" data-state={rollout.state} data-kind={rollout.kind}>
      <div className="mb-2 flex flex-wrap items-center gap-2 text-sm">
        <span className="font-medium text-slate-800">
          {KIND[rollout.kind]} to revision {rollout.toRevision}
        </span>
        <span className="text-slate-400">from {rollout.fromRevision}</span>
        <Badge tone={ROLLOUT_TONE[rollout.state]} dot pulse={live} data-testid="rollout-state">
          {rollout.state.replace('_', ' ')}
        </Badge>
        <RelTime date={rollout.finishedAt ?? rollout.createdAt} className="text-xs text-slate-400" />
      </div>
      <div className="flex h-2.5 w-full overflow-hidden rounded-full bg-slate-200" title={`${rollout.newReady} of ${rollout.replicas} new instances ready`}>
        <div className={`h-full transition-[width] duration-500 ${rollout.state === 'rolled_back' || rollout.state === 'failed' ? 'bg-amber-500' : 'bg-sky-500'}`} style={{ width: `${pct}%` }} />
      </div>
      <div className="mt-2 flex flex-wrap gap-x-4 gap-y-1 text-xs tabular-nums text-slate-500">
        <span data-testid="rollout-new">
          <span className="font-medium text-slate-700">{rollout.newReady}</span>/{rollout.newInstances} new ready
        </span>
        <span data-testid="rollout-old">
          <span className="font-medium text-slate-700">{rollout.oldInstances}</span> old left
        </span>
        <span data-testid="rollout-step">{rollout.step}</span>
      </div>
      {rollout.message ? <div className="mt-2 rounded-md bg-amber-50 px-2 py-1 text-xs text-amber-800 ring-1 ring-inset ring-amber-200">{rollout.message}</div> : null}
    </div>
  )
}

/** A new revision from the current spec with another command, arguments, image or environment. */
export function NewRevision({ app, tenantId }: { app: TAppDetail; tenantId: string }) {
  const trpc = useTRPC()
  const [args, setArgs] = useState(app.spec.args.map((a) => (/\s/.test(a) ? JSON.stringify(a) : a)).join(' '))
  const [image, setImage] = useState(app.spec.image ?? '')
  const [env, setEnv] = useState(Object.entries(app.spec.env).map(([k, v]) => `${k}=${v}`).join('\n'))
  const [minReady, setMinReady] = useState(app.spec.minReadySeconds === null ? '' : String(app.spec.minReadySeconds))
  const update = useMutation(trpc.apps.update.mutationOptions())
  const parsedEnv = parseEnv(env)
  // The API's own rule, shown before it is sent.
  const minReadyError =
    minReady.trim() === '' ? null : Number.isNaN(Number(minReady)) ? 'Enter a number' : (ZMinReadySeconds.safeParse(Number(minReady)).error?.issues[0]?.message ?? null)
  const submit = () => {
    if (parsedEnv.error || minReadyError) return
    const spec = {
      ...app.spec,
      args: parseArgs(args),
      env: parsedEnv.env,
      image: app.spec.driver === 'docker' ? image : undefined,
      command: app.spec.command ?? undefined,
      minReadySeconds: minReady.trim() === '' ? null : Number(minReady),
    }
    update.mutate({ tenantId, appId: app.id, spec })
  }
  return (
    <form
      className="space-y-3"
      onSubmit={(e) => {
        e.preventDefault()
        submit()
      }}
      data-testid="new-revision"
    >
      {app.spec.driver === 'docker' ? (
        <label className="block text-xs font-medium text-slate-600">
          Image
          <input className={`${inputBase} mt-1 w-full font-mono`} value={image} onChange={(e) => setImage(e.target.value)} data-testid="revision-image" />
        </label>
      ) : null}
      <label className="block text-xs font-medium text-slate-600">
        Arguments
        <input className={`${inputBase} mt-1 w-full font-mono`} value={args} onChange={(e) => setArgs(e.target.value)} data-testid="revision-args" />
      </label>
      <label className="block text-xs font-medium text-slate-600">
        Environment (NAME=value per line)
        <textarea className={`${inputBase} mt-1 h-20 w-full font-mono`} value={env} onChange={(e) => setEnv(e.target.value)} data-testid="revision-env" />
      </label>
      {parsedEnv.error ? <div className="text-xs text-red-700">{parsedEnv.error}</div> : null}
      <label className="block text-xs font-medium text-slate-600">
        Minimum ready time (s)
        <input
          type="number"
          min={0}
          className={`${inputBase} mt-1 w-32`}
          value={minReady}
          onChange={(e) => setMinReady(e.target.value)}
          placeholder={String(minReadySecondsOf({ ...app.spec, minReadySeconds: null }))}
          aria-invalid={!!minReadyError}
          data-testid="revision-min-ready"
        />
        <span className="ml-2 font-normal text-slate-500">how long a new instance runs, ready, before it replaces an old one (0–600); empty: the default</span>
      </label>
      {minReadyError ? (
        <div className="text-xs text-red-700" data-testid="revision-min-ready-error">
          Minimum ready time: {minReadyError}
        </div>
      ) : null}
      <ErrorBox error={update.error} />
      <div className="flex items-center gap-3">
        <Button type="submit" variant="primary" disabled={update.isPending || !!parsedEnv.error || !!minReadyError} data-testid="roll-out">
          Roll out
        </Button>
        <span className="text-xs text-slate-500">
          {app.spec.maxSurge} extra and at most {app.spec.maxUnavailable} unavailable at a time; new instances must be ready
          {minReadySecondsOf(app.spec) ? ` (and keep running ${minReadySecondsOf(app.spec)}s)` : ''} within {app.spec.progressDeadlineSeconds}s or the app rolls back.
        </span>
      </div>
    </form>
  )
}

/** Every revision, newest first, with what changed and a roll back button. */
export function Revisions({ app, tenantId, canDeploy }: { app: TAppDetail; tenantId: string; canDeploy: boolean }) {
  const trpc = useTRPC()
  const revisions = useQuery(trpc.apps.revisions.queryOptions({ tenantId, appId: app.id }))
  const rollback = useMutation(trpc.apps.rollback.mutationOptions())
  return (
    <Panel title="Revisions" className="mb-5" testId="revisions" bodyClassName="divide-y divide-slate-100">
      {revisions.error ? <ErrorBox error={revisions.error} className="m-3" /> : null}
      <ErrorBox error={rollback.error} className="m-3" />
      {(revisions.data ?? []).map((r) => (
        <div key={r.revision} className="flex flex-wrap items-start gap-3 px-4 py-3 text-sm" data-testid="revision-row" data-revision={r.revision}>
          <div className="w-28 shrink-0">
            <div className="font-medium text-slate-800">
              revision {r.revision} {r.current ? <Badge tone="green">current</Badge> : null}
            </div>
            <RelTime date={r.createdAt} className="text-xs text-slate-400" />
          </div>
          <div className="min-w-0 flex-1">
            <div className="text-xs text-slate-500">
              {r.cause}
              {r.createdBy ? ` · ${r.createdBy}` : ''}
            </div>
            {r.changes.length ? (
              <ul className="mt-1 space-y-0.5 font-mono text-[12px]" data-testid="revision-diff">
                {r.changes.slice(0, 12).map((c) => (
                  <li key={c.field} className="break-all">
                    <span className="text-slate-600">{c.field}</span>: <span className="text-red-700 line-through">{c.from ?? '∅'}</span> → <span className="text-emerald-700">{c.to ?? '∅'}</span>
                  </li>
                ))}
                {r.changes.length > 12 ? <li className="text-slate-400">… {r.changes.length - 12} more</li> : null}
              </ul>
            ) : r.revision > 1 ? (
              <div className="mt-1 text-xs text-slate-400">no change</div>
            ) : null}
          </div>
          {canDeploy && !r.current ? (
            <Button onClick={() => rollback.mutate({ tenantId, appId: app.id, revision: r.revision })} disabled={rollback.isPending} data-testid="rollback">
              Roll back to {r.revision}
            </Button>
          ) : null}
        </div>
      ))}
      {revisions.data && !revisions.data.length ? <div className="px-4 py-3 text-sm text-slate-500">No revisions.</div> : null}
    </Panel>
  )
}

/** Readiness of one instance, and the last failed check. */
export function HealthCell({ ready, draining, message, failedAt }: { ready: boolean | null; draining: boolean; message: string | null; failedAt: Date | string | null }) {
  return (
    <div className="flex flex-col items-start gap-0.5" data-testid="instance-health" data-ready={String(ready)}>
      <div className="flex gap-1">
        {ready === null ? <span className="text-slate-400">no check</span> : <Badge tone={ready ? 'green' : 'red'}>{ready ? 'ready' : 'not ready'}</Badge>}
        {draining ? <Badge tone="amber">draining</Badge> : null}
      </div>
      {message ? (
        <span className="block max-w-56 truncate text-[11px] text-slate-500" title={message} data-testid="health-message">
          <Mono>{message}</Mono> {failedAt ? <RelTime date={failedAt} /> : null}
        </span>
      ) : null}
    </div>
  )
}
