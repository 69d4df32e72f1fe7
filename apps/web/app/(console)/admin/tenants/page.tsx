'use client'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import Link from 'next/link'
import { Fragment, useState } from 'react'
import { useForm } from 'react-hook-form'
import { ZCreateTenantInput, ZQuotas, type TCreateTenantInput, type TQuotas } from '@alveary/core/schemas'
import { zodResolver } from '@hookform/resolvers/zod'
import { DataTable } from '@/components/data-table'
import { Button, ErrorBox, Field, inputCls, PageHeader, Panel, RelTime, tdCls, trCls, UsageBar } from '@/components/ui'
import { fmtCpu, fmtMem, fmtNum } from '@/lib/format'
import { useTRPC, type TTenant } from '@/lib/trpc'

const QUOTA_FIELDS = [
  { key: 'cpuMillis', label: 'CPU (millicores)', fmt: fmtCpu },
  { key: 'memoryMb', label: 'Memory (MiB)', fmt: fmtMem },
  { key: 'instances', label: 'Instances', fmt: fmtNum },
  { key: 'apps', label: 'Apps', fmt: fmtNum },
] as const

interface QuotaValues {
  cpuMillis: number
  memoryMb: number
  instances: number
  apps: number
}
interface CreateValues {
  slug: string
  name: string
  placementStrategy: 'spread' | 'binpack'
  quotas: QuotaValues
}

/** Blank quota inputs (NaN) mean "the platform default". */
function cleanQuotas(q: QuotaValues): Partial<TQuotas> {
  const out: Partial<TQuotas> = {}
  for (const { key } of QUOTA_FIELDS) if (!Number.isNaN(q[key])) out[key] = q[key]
  return out
}

const createResolver = zodResolver(ZCreateTenantInput)

function CreateTenant() {
  const trpc = useTRPC()
  const qc = useQueryClient()
  const form = useForm<CreateValues, unknown, TCreateTenantInput>({
    resolver: (values, ctx, opts) => createResolver({ ...values, quotas: cleanQuotas(values.quotas) }, ctx, opts as never),
    defaultValues: { slug: '', name: '', placementStrategy: 'spread' },
  })
  const create = useMutation(
    trpc.tenants.create.mutationOptions({
      onSuccess: async () => {
        form.reset()
        await qc.invalidateQueries({ queryKey: trpc.tenants.pathKey() })
        await qc.invalidateQueries({ queryKey: trpc.auth.me.pathKey() })
      },
    }),
  )
  const errors = form.formState.errors
  const placement = form.watch('placementStrategy')
  const num = { valueAsNumber: true } as const
  return (
    <Panel title="Create tenant" testId="create-tenant">
      <form onSubmit={form.handleSubmit((v) => create.mutate(v))} className="space-y-4 p-4" noValidate>
        <div className="grid gap-4 sm:grid-cols-[minmax(0,1fr)_minmax(0,1fr)_minmax(0,14rem)]">
          <Field label="Slug" htmlFor="t-slug" error={errors.slug?.message} hint="Used in URLs: lowercase letters, digits, dashes.">
            <input id="t-slug" className={`${inputCls} font-mono`} placeholder="acme" autoComplete="off" aria-invalid={!!errors.slug} {...form.register('slug')} />
          </Field>
          <Field label="Name" htmlFor="t-name" error={errors.name?.message}>
            <input id="t-name" className={inputCls} placeholder="Acme Corp" autoComplete="off" aria-invalid={!!errors.name} {...form.register('name')} />
          </Field>
          <Field
            label="Placement strategy"
            htmlFor="t-placement"
            error={errors.placementStrategy?.message}
            hint={placement === 'binpack' ? 'Fullest node that fits first. Apps may override it.' : 'Emptiest node first. Apps may override it.'}
          >
            <select id="t-placement" className={inputCls} {...form.register('placementStrategy')}>
              <option value="spread">spread</option>
              <option value="binpack">binpack</option>
            </select>
          </Field>
        </div>
        <div>
          <div className="mb-2 text-xs font-medium text-slate-700">Quotas <span className="font-normal text-slate-500">(leave blank for the platform defaults)</span></div>
          <div className="grid grid-cols-2 gap-3 lg:grid-cols-4">
            {QUOTA_FIELDS.map((f) => (
              <Field key={f.key} label={<span className="font-normal text-slate-500">{f.label}</span>} htmlFor={`t-q-${f.key}`} error={errors.quotas?.[f.key]?.message}>
                <input id={`t-q-${f.key}`} type="number" min={0} className={inputCls} {...form.register(`quotas.${f.key}`, num)} />
              </Field>
            ))}
          </div>
        </div>
        <ErrorBox error={create.error} />
        {create.isSuccess ? (
          <p className="text-sm text-emerald-700" data-testid="tenant-created">
            Tenant {create.data.slug} created.{' '}
            <Link href={`/t/${create.data.slug}/members`} className="font-medium underline">
              Invite its first owner
            </Link>
          </p>
        ) : null}
        <div className="flex justify-end">
          <Button type="submit" variant="primary" disabled={create.isPending} data-testid="create-tenant-submit">
            {create.isPending ? 'Creating…' : 'Create tenant'}
          </Button>
        </div>
      </form>
    </Panel>
  )
}

const quotaResolver = zodResolver(ZQuotas)

function EditQuotas({ tenant, onDone }: { tenant: TTenant; onDone: () => void }) {
  const trpc = useTRPC()
  const qc = useQueryClient()
  const form = useForm<QuotaValues, unknown, TQuotas>({ resolver: quotaResolver as never, defaultValues: tenant.quotas })
  const save = useMutation(
    trpc.tenants.setQuotas.mutationOptions({
      onSuccess: async () => {
        await qc.invalidateQueries({ queryKey: trpc.tenants.pathKey() })
        onDone()
      },
    }),
  )
  const errors = form.formState.errors
  return (
    <form onSubmit={form.handleSubmit((q) => save.mutate({ tenantId: tenant.id, quotas: q }))} className="space-y-3 bg-slate-50 px-4 py-3" noValidate data-testid="edit-quotas">
      <div className="grid grid-cols-2 gap-3 lg:grid-cols-4">
        {QUOTA_FIELDS.map((f) => (
          <Field key={f.key} label={f.label} htmlFor={`q-${tenant.id}-${f.key}`} error={errors[f.key]?.message}>
            <input id={`q-${tenant.id}-${f.key}`} type="number" min={0} className={inputCls} aria-invalid={!!errors[f.key]} {...form.register(f.key, { valueAsNumber: true })} />
          </Field>
        ))}
      </div>
      <ErrorBox error={save.error} />
      <div className="flex justify-end gap-2">
        <Button variant="ghost" onClick={onDone}>
          Cancel
        </Button>
        <Button type="submit" variant="primary" disabled={save.isPending} data-testid="save-quotas">
          Save quotas
        </Button>
      </div>
    </form>
  )
}

/** The operator's call, audited: a trusted tenant's process apps may run unconfined on nodes that cannot sandbox them. */
function TrustToggle({ tenant }: { tenant: TTenant }) {
  const trpc = useTRPC()
  const qc = useQueryClient()
  const save = useMutation(trpc.tenants.setTrusted.mutationOptions({ onSuccess: () => qc.invalidateQueries({ queryKey: trpc.tenants.pathKey() }) }))
  return (
    <label
      className="inline-flex items-center gap-1.5 text-xs"
      title="Trusted tenants' process apps may also run on nodes that cannot sandbox them, unconfined. Others run sandboxed only."
    >
      <input
        type="checkbox"
        checked={tenant.trusted}
        disabled={save.isPending}
        onChange={(e) => save.mutate({ tenantId: tenant.id, trusted: e.target.checked })}
        data-testid="tenant-trusted"
      />
      <span className={tenant.trusted ? 'font-medium text-amber-700' : 'text-slate-500'}>{tenant.trusted ? 'trusted' : 'sandboxed only'}</span>
      {save.error ? <span className="text-red-700">{save.error.message}</span> : null}
    </label>
  )
}

function QuotaCell({ tenantId, k, quota }: { tenantId: string; k: (typeof QUOTA_FIELDS)[number]; quota: number }) {
  const trpc = useTRPC()
  const usage = useQuery(trpc.tenants.usage.queryOptions({ tenantId }))
  const used = usage.data?.used[k.key]
  return (
    <div className="w-28">
      <div className="mb-1 text-xs tabular-nums">
        <span className="font-medium text-slate-800">{used === undefined ? '—' : k.fmt(used)}</span>
        <span className="text-slate-400"> / {k.fmt(quota)}</span>
      </div>
      <UsageBar used={used ?? 0} total={quota} />
    </div>
  )
}

export default function TenantsPage() {
  const trpc = useTRPC()
  const tenants = useQuery(trpc.tenants.list.queryOptions())
  const [editing, setEditing] = useState<string | null>(null)
  return (
    <>
      <title>Tenants · Alveary</title>
      <PageHeader title="Tenants" subtitle="Every tenant on the platform, its quotas and what it uses of them." />
      <Panel title={`Tenants${tenants.data ? ` (${tenants.data.length})` : ''}`} className="mb-5">
        <DataTable
          query={tenants}
          testId="tenants-table"
          columns={[
            { label: 'Tenant' },
            { label: 'Placement', title: "Default placement of the tenant's apps" },
            { label: 'Trust', title: 'Trusted tenants may run unsandboxed on nodes that cannot sandbox process apps' },
            ...QUOTA_FIELDS.map((f) => ({ label: f.label.replace(/ \(.*\)/, '') })),
            { label: 'Created' },
            {},
          ]}
          empty={tenants.data?.length === 0 ? 'No tenants yet. Create the first one below.' : null}
        >
          {tenants.data?.map((t) => (
            <Fragment key={t.id}>
              <tr className={trCls} data-testid="tenant-row" data-slug={t.slug}>
                <td className={tdCls}>
                  <Link href={`/t/${t.slug}/apps`} className="font-medium text-slate-900 hover:underline">
                    {t.name}
                  </Link>
                  <div className="font-mono text-[11px] text-slate-500">{t.slug}</div>
                </td>
                <td className={tdCls}>
                  <span className={t.placementStrategy === 'binpack' ? 'text-violet-700' : 'text-slate-600'} data-testid="tenant-placement">
                    {t.placementStrategy}
                  </span>
                </td>
                <td className={tdCls}>
                  <TrustToggle tenant={t} />
                </td>
                {QUOTA_FIELDS.map((f) => (
                  <td key={f.key} className={tdCls}>
                    <QuotaCell tenantId={t.id} k={f} quota={t.quotas[f.key]} />
                  </td>
                ))}
                <td className={`${tdCls} text-slate-500`}>
                  <RelTime date={t.createdAt} />
                </td>
                <td className={`${tdCls} text-right`}>
                  <div className="flex justify-end gap-2">
                    <Link href={`/t/${t.slug}/members`} className="inline-flex h-7 items-center rounded-md border border-slate-300 bg-white px-2.5 text-xs font-medium text-slate-700 hover:bg-slate-50" data-testid="tenant-members">
                      Members
                    </Link>
                    <Button size="sm" onClick={() => setEditing(editing === t.id ? null : t.id)} data-testid="edit-quotas-toggle">
                      Edit quotas
                    </Button>
                  </div>
                </td>
              </tr>
              {editing === t.id ? (
                <tr>
                  <td colSpan={9} className="border-b border-slate-200 p-0">
                    <EditQuotas tenant={t} onDone={() => setEditing(null)} />
                  </td>
                </tr>
              ) : null}
            </Fragment>
          ))}
        </DataTable>
      </Panel>
      <CreateTenant />
    </>
  )
}
