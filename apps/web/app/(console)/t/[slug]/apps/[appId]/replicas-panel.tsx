'use client'
import { useMutation, useQueryClient } from '@tanstack/react-query'
import { useEffect, useState } from 'react'
import { Button, ErrorBox, inputBase, Panel } from '@/components/ui'
import { useTenant } from '@/lib/session'
import { useTRPC, type TAppDetail } from '@/lib/trpc'

/** How many replicas run of those asked, by state, and the control that changes the number. */
export function ReplicasPanel({ app }: { app: TAppDetail }) {
  return (
    <Panel title="Replicas" bodyClassName="space-y-5 p-4">
      <ReplicaProgress app={app} />
      <div className="border-t border-slate-100 pt-4">
        <ScaleControl app={app} />
      </div>
    </Panel>
  )
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
