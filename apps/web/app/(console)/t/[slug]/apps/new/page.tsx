'use client'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import clsx from 'clsx'
import Link from 'next/link'
import { useRouter } from 'next/navigation'
import { useEffect, useState, type ReactNode } from 'react'
import { useForm } from 'react-hook-form'
import { DEFAULT_MIN_READY_SECONDS, type TCreateAppInput } from '@alveary/core/schemas'
import { Button, ErrorBox, Field, inputCls, PageHeader, Panel } from '@/components/ui'
import { ADVANCED_FIELDS, appFormResolver, emptyAppForm, parseSelector, sampleAppForm, type AppFormValues } from '@/lib/app-form'
import { serverFieldErrors } from '@/lib/errors'
import { fmtCpu, fmtMem } from '@/lib/format'
import { useTenant } from '@/lib/session'
import { useTRPC } from '@/lib/trpc'

function Section({ title, desc, children }: { title: string; desc: ReactNode; children: ReactNode }) {
  return (
    <div className="grid gap-x-8 gap-y-3 border-b border-slate-100 px-5 py-5 last:border-0 md:grid-cols-[14rem_1fr]">
      <div>
        <h3 className="text-sm font-semibold text-slate-800">{title}</h3>
        <p className="mt-1 text-xs leading-relaxed text-slate-500">{desc}</p>
      </div>
      <div className="grid min-w-0 gap-4 sm:grid-cols-2">{children}</div>
    </div>
  )
}

const SPREAD_HINT: Record<string, string> = {
  none: 'Replicas may share a node freely.',
  soft: 'Prefer different nodes for the replicas (default).',
  hard: 'Never two replicas on one node: with fewer eligible nodes than replicas, the rest stay pending.',
}

export default function NewAppPage() {
  const trpc = useTRPC()
  const tenant = useTenant()
  const router = useRouter()
  const qc = useQueryClient()
  const form = useForm<AppFormValues, unknown, TCreateAppInput>({ resolver: appFormResolver, defaultValues: emptyAppForm, mode: 'onTouched' })
  const { register, formState, watch } = form
  const errors = formState.errors
  const create = useMutation(
    trpc.apps.create.mutationOptions({
      onSuccess: async (app) => {
        await qc.invalidateQueries({ queryKey: trpc.apps.pathKey() })
        await qc.invalidateQueries({ queryKey: trpc.tenants.usage.pathKey() })
        router.push(`/t/${tenant.slug}/apps/${app.id}`)
      },
      onError: (err) => {
        const fe = serverFieldErrors(err)
        if (fe['name']?.[0]) form.setError('name', { type: 'server', message: fe['name'][0] })
        if (fe['replicas']?.[0]) form.setError('replicas', { type: 'server', message: fe['replicas'][0] })
      },
    }),
  )
  const driver = watch('driver')
  const [spread, placement, priority, maxUnavailable, selectorText] = watch(['spread', 'placementStrategy', 'priorityClass', 'maxUnavailable', 'nodeSelector'])
  const tenantInfo = useQuery(trpc.tenants.get.queryOptions({ tenantId: tenant.id }, { staleTime: 60_000 }))
  const tenantStrategy = tenantInfo.data?.placementStrategy
  const [advanced, setAdvanced] = useState(false)
  const networks = useQuery(trpc.networks.list.queryOptions({ tenantId: tenant.id }, { staleTime: 30_000 }))
  /** '': the tenant's default network where nodes run the overlay; 'host': host networking. */
  const [network, setNetwork] = useState('')
  const advancedInvalid = ADVANCED_FIELDS.some((f) => errors[f])
  // Invalid advanced fields must be visible: open the disclosure.
  useEffect(() => {
    if (advancedInvalid) setAdvanced(true)
  }, [advancedInvalid, formState.submitCount])
  const labels = Object.keys(parseSelector(selectorText ?? '').labels).length
  const schedulingSummary = [
    labels ? `${labels} node ${labels === 1 ? 'label' : 'labels'}` : 'any node',
    `${spread} spread`,
    placement ? `${placement}` : `tenant default placement${tenantStrategy ? ` (${tenantStrategy})` : ''}`,
    `${priority} priority`,
    `max ${Number.isFinite(maxUnavailable) ? maxUnavailable : '—'} unavailable`,
  ].join(' · ')
  const [replicas, cpu, mem, readinessPath] = watch(['replicas', 'cpuMillis', 'memoryMb', 'readinessPath'])
  const total = (n: number) => (Number.isFinite(n) && Number.isFinite(replicas) ? n * replicas : null)

  const fillSample = () => {
    form.reset(sampleAppForm)
  }
  const num = { valueAsNumber: true } as const

  if (!tenant.canDeploy)
    return (
      <Panel bodyClassName="p-6 text-sm text-slate-600">
        Your role in {tenant.name} ({tenant.role ?? 'none'}) cannot deploy apps; developers, admins and owners can.
      </Panel>
    )

  return (
    <>
      <title>{`Deploy app · ${tenant.name} · Alveary`}</title>
      <PageHeader
        title="Deploy app"
        subtitle={
          <>
            <Link href={`/t/${tenant.slug}/apps`} className="hover:underline">
              Apps
            </Link>{' '}
            / new
          </>
        }
        actions={
          <Button onClick={fillSample} data-testid="use-sample">
            Use sample app
          </Button>
        }
      />
      <form onSubmit={form.handleSubmit((v) => create.mutate({ tenantId: tenant.id, ...v, ...(network && { network: network === 'host' ? null : network }) }))} noValidate data-testid="deploy-form">
        <Panel>
          <Section title="App" desc="The name is unique in the tenant: lowercase letters, digits and dashes.">
            <Field label="Name" htmlFor="name" error={errors.name?.message}>
              <input id="name" className={inputCls} placeholder="hello" autoComplete="off" aria-invalid={!!errors.name} {...register('name')} />
            </Field>
            <Field label="Replicas" htmlFor="replicas" error={errors.replicas?.message}>
              <input id="replicas" type="number" min={0} className={inputCls} aria-invalid={!!errors.replicas} {...register('replicas', num)} />
            </Field>
            <Field label="Network" htmlFor="network" hint="Instances get an address on it, kept when they restart or move. Host networking: the node's own network, host ports only.">
              <select id="network" className={inputCls} value={network} onChange={(e) => setNetwork(e.target.value)} data-testid="deploy-network">
                <option value="">Tenant default</option>
                {networks.data?.map((n) => (
                  <option key={n.id} value={n.name}>
                    {n.name} ({n.cidr})
                  </option>
                ))}
                <option value="host">Host networking</option>
              </select>
            </Field>
          </Section>

          <Section title="Runtime" desc="Process apps run a command on the node; docker apps run an image.">
            <Field label="Driver" error={errors.driver?.message} className="sm:col-span-2">
              <div className="inline-flex rounded-md border border-slate-300 bg-slate-50 p-0.5" role="radiogroup">
                {(['process', 'docker'] as const).map((d) => (
                  <label
                    key={d}
                    className={clsx(
                      'cursor-pointer rounded px-3 py-1 text-sm font-medium',
                      driver === d ? 'bg-white text-slate-900 shadow-sm ring-1 ring-slate-200' : 'text-slate-500 hover:text-slate-800',
                    )}
                  >
                    <input type="radio" value={d} className="sr-only" {...register('driver')} />
                    {d}
                  </label>
                ))}
              </div>
            </Field>
            {driver === 'docker' ? (
              <Field label="Image" htmlFor="image" error={errors.image?.message} hint="e.g. nginx:1.27 or ghcr.io/org/app:v2" className="sm:col-span-2">
                <input id="image" className={`${inputCls} font-mono`} placeholder="nginx:1.27" aria-invalid={!!errors.image} {...register('image')} />
              </Field>
            ) : null}
            {driver === 'docker' ? (
              <label className="flex items-start gap-2 text-sm text-slate-700 sm:col-span-2">
                <input type="checkbox" className="mt-0.5" {...register('readOnlyRootfs')} data-testid="read-only-rootfs" />
                <span>
                  Read-only root filesystem
                  <span className="block text-xs text-slate-500">The image's files cannot be changed; /tmp is memory (counted against the limit), volumes stay writable.</span>
                </span>
              </label>
            ) : null}
            <Field
              label={driver === 'docker' ? 'Command (optional)' : 'Command'}
              htmlFor="command"
              error={errors.command?.message}
              hint={driver === 'docker' ? 'Overrides the image entrypoint.' : 'The executable, e.g. node'}
            >
              <input id="command" className={`${inputCls} font-mono`} placeholder="node" aria-invalid={!!errors.command} {...register('command')} />
            </Field>
            <Field label="Arguments" htmlFor="args" error={errors.args?.message} hint="One per line, or space-separated on one line.">
              <textarea id="args" rows={2} className={`${inputCls} font-mono`} placeholder="examples/hello/server.js" aria-invalid={!!errors.args} {...register('args')} />
            </Field>
          </Section>

          <Section title="Resources" desc="Requested per replica and counted against the tenant's quota.">
            <Field label="CPU (millicores)" htmlFor="cpuMillis" error={errors.cpuMillis?.message} hint="1000 = one core">
              <input id="cpuMillis" type="number" min={10} step={10} className={inputCls} aria-invalid={!!errors.cpuMillis} {...register('cpuMillis', num)} />
            </Field>
            <Field label="Memory (MiB)" htmlFor="memoryMb" error={errors.memoryMb?.message}>
              <input id="memoryMb" type="number" min={4} className={inputCls} aria-invalid={!!errors.memoryMb} {...register('memoryMb', num)} />
            </Field>
            <Field label="Processes (pids limit)" htmlFor="pidsMax" error={errors.pidsMax?.message} hint="Processes and threads per replica; empty: the node's default (also the most a node gives).">
              <input id="pidsMax" type="number" min={8} className={inputCls} placeholder="node default" aria-invalid={!!errors.pidsMax} {...register('pidsMax')} data-testid="pids-max" />
            </Field>
            <Field label="Restart policy" htmlFor="restartPolicy" error={errors.restartPolicy?.message}>
              <select id="restartPolicy" className={inputCls} {...register('restartPolicy')}>
                <option value="always">always</option>
                <option value="on_failure">on failure</option>
                <option value="never">never</option>
              </select>
            </Field>
            <div className="self-end rounded-md bg-slate-50 px-3 py-2 text-xs tabular-nums text-slate-600 ring-1 ring-slate-200">
              Total: {total(cpu) === null ? '—' : fmtCpu(total(cpu)!)} CPU · {total(mem) === null ? '—' : fmtMem(total(mem)!)} memory ·{' '}
              {Number.isFinite(replicas) ? `${replicas} ${replicas === 1 ? 'instance' : 'instances'}` : '— instances'}
            </div>
          </Section>

          <Section title="Environment & ports" desc="Each named port gets a host port on the node; the app reads it from PORT (first port) or PORT_<NAME>.">
            <Field label="Environment" htmlFor="env" error={errors.env?.message} hint="KEY=VALUE, one per line.">
              <textarea id="env" rows={4} className={`${inputCls} font-mono`} placeholder={'LOG_LEVEL=info\nGREETING=hello'} aria-invalid={!!errors.env} {...register('env')} />
            </Field>
            <Field label="Ports" htmlFor="ports" error={errors.ports?.message} hint='Names, comma-separated; "name:8080" sets the container port.'>
              <input id="ports" className={`${inputCls} font-mono`} placeholder="http" aria-invalid={!!errors.ports} {...register('ports')} />
            </Field>
            <Field label="Readiness check" htmlFor="readinessPath" error={errors.readinessPath?.message} hint="HTTP path on the first port that answers 200 when the instance may take traffic; empty: none.">
              <input id="readinessPath" className={`${inputCls} font-mono`} placeholder="/healthz" aria-invalid={!!errors.readinessPath} {...register('readinessPath')} />
            </Field>
            <Field label="Liveness check" htmlFor="livenessPath" error={errors.livenessPath?.message} hint="HTTP path on the first port; 3 failures in a row restart the instance; empty: none.">
              <input id="livenessPath" className={`${inputCls} font-mono`} placeholder="/livez" aria-invalid={!!errors.livenessPath} {...register('livenessPath')} />
            </Field>
            <Field
              label="Minimum ready time (s)"
              htmlFor="minReadySeconds"
              error={errors.minReadySeconds?.message}
              hint={`How long a new instance of a rollout runs, ready, before it replaces an old one (0–600); empty: ${readinessPath?.trim() ? 0 : DEFAULT_MIN_READY_SECONDS} s.`}
            >
              <input
                id="minReadySeconds"
                type="number"
                min={0}
                max={600}
                className={inputCls}
                placeholder={String(readinessPath?.trim() ? 0 : DEFAULT_MIN_READY_SECONDS)}
                aria-invalid={!!errors.minReadySeconds}
                {...register('minReadySeconds')}
                data-testid="min-ready"
              />
            </Field>
          </Section>

          <Section
            title="Volumes"
            desc="Storage each replica keeps across restarts and moves: replica #n always gets its own volume back. Local volumes live on the node and are copied when the replica moves; shared ones live on storage every node mounts. They are deleted with the app."
          >
            <Field
              label="Volumes"
              htmlFor="volumes"
              error={errors.volumes?.message}
              hint="One per line: name, size in MiB, mount path, and local (default) or shared. The app finds each at ALVEARY_VOLUME_<NAME>."
              className="sm:col-span-2"
            >
              <textarea id="volumes" rows={2} className={`${inputCls} font-mono`} placeholder="data 1024 /data" aria-invalid={!!errors.volumes} {...register('volumes')} data-testid="volumes-input" />
            </Field>
            <label className="flex items-start gap-2 text-sm text-slate-700 sm:col-span-2">
              <input type="checkbox" className="mt-0.5" {...register('stopAfterDisconnect')} data-testid="stop-after-disconnect" />
              <span>
                Stop after disconnect
                <span className="block text-xs text-slate-500">
                  A node that loses the control plane stops the replicas by itself, so they never run twice. Always on for apps with volumes.
                </span>
              </span>
            </label>
          </Section>

          <div className="border-b border-slate-100" data-testid="advanced-scheduling">
            <button
              type="button"
              onClick={() => setAdvanced((o) => !o)}
              aria-expanded={advanced}
              aria-controls="advanced-scheduling-fields"
              className="flex w-full items-center gap-3 px-5 py-3 text-left hover:bg-slate-50"
              data-testid="advanced-toggle"
            >
              <svg viewBox="0 0 20 20" fill="currentColor" className={clsx('size-4 shrink-0 text-slate-500 transition-transform', advanced && 'rotate-90')} aria-hidden="true">
                <path d="M7 4l6 6-6 6z" />
              </svg>
              <span className="text-sm font-semibold text-slate-800">Advanced scheduling</span>
              <span className={clsx('min-w-0 truncate text-xs', advancedInvalid ? 'text-red-600' : 'text-slate-500')} data-testid="advanced-summary">
                {advancedInvalid ? 'has errors' : schedulingSummary}
              </span>
            </button>
            <div id="advanced-scheduling-fields" hidden={!advanced}>
              <Section title="Placement" desc="Where replicas may run and how they are spread. The defaults suit most apps.">
                <Field
                  label="Node selector"
                  htmlFor="nodeSelector"
                  error={errors.nodeSelector?.message}
                  hint="key=value, one per line: only nodes carrying all these labels run the app."
                  className="sm:col-span-2"
                >
                  <textarea id="nodeSelector" rows={2} className={`${inputCls} font-mono`} placeholder={'zone=eu-1\ndisk=ssd'} aria-invalid={!!errors.nodeSelector} {...register('nodeSelector')} />
                </Field>
                <Field label="Replica spread" error={errors.spread?.message} hint={SPREAD_HINT[spread] ?? ''} className="sm:col-span-2">
                  <div className="inline-flex rounded-md border border-slate-300 bg-slate-50 p-0.5" role="radiogroup" aria-label="Replica spread" data-testid="spread">
                    {(['none', 'soft', 'hard'] as const).map((v) => (
                      <label
                        key={v}
                        className={clsx(
                          'cursor-pointer rounded px-3 py-1 text-sm font-medium',
                          spread === v ? 'bg-white text-slate-900 shadow-sm ring-1 ring-slate-200' : 'text-slate-500 hover:text-slate-800',
                        )}
                      >
                        <input type="radio" value={v} className="sr-only" {...register('spread')} />
                        {v}
                      </label>
                    ))}
                  </div>
                </Field>
                <Field label="Placement strategy" htmlFor="placementStrategy" error={errors.placementStrategy?.message} hint="Across nodes, for this app's replicas.">
                  <select id="placementStrategy" className={inputCls} {...register('placementStrategy')}>
                    <option value="">tenant default{tenantStrategy ? ` (${tenantStrategy})` : ''}</option>
                    <option value="spread">spread: emptiest node first</option>
                    <option value="binpack">binpack: fullest node that fits</option>
                  </select>
                </Field>
                <Field label="Priority class" htmlFor="priorityClass" error={errors.priorityClass?.message} hint="Higher classes are placed first, and may evict lower ones within their apps' max unavailable (evicted replicas with volumes move).">
                  <select id="priorityClass" className={inputCls} {...register('priorityClass')}>
                    <option value="low">low</option>
                    <option value="normal">normal</option>
                    <option value="high">high</option>
                    <option value="critical">critical</option>
                  </select>
                </Field>
                <Field label="Max unavailable during drains" htmlFor="maxUnavailable" error={errors.maxUnavailable?.message} hint="Replicas a node drain may take down at once.">
                  <input id="maxUnavailable" type="number" min={1} className={inputCls} aria-invalid={!!errors.maxUnavailable} {...register('maxUnavailable', num)} />
                </Field>
              </Section>
            </div>
          </div>

          <div className="flex flex-wrap items-center justify-end gap-3 border-t border-slate-200 bg-slate-50/70 px-5 py-3">
            {create.error ? <ErrorBox error={create.error} title="Deploy failed" className="mr-auto" /> : null}
            {Object.keys(errors).length ? (
              <span className="mr-auto text-sm text-red-600" data-testid="form-invalid">
                Fix the highlighted fields.
              </span>
            ) : null}
            <Link href={`/t/${tenant.slug}/apps`} className="text-sm font-medium text-slate-600 hover:text-slate-900">
              Cancel
            </Link>
            <Button type="submit" variant="primary" disabled={create.isPending || create.isSuccess} data-testid="deploy-submit">
              {create.isPending || create.isSuccess ? 'Deploying…' : 'Deploy'}
            </Button>
          </div>
        </Panel>
      </form>
    </>
  )
}
