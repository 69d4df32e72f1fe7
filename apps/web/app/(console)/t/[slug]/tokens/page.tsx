'use client'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { useState } from 'react'
import { ZMemberRole } from '@alveary/core/schemas'
import { DataTable } from '@/components/data-table'
import { Badge, Button, ConfirmButton, ErrorBox, Field, inputCls, Mono, PageHeader, Panel, RelTime, tdCls, trCls } from '@/components/ui'
import { roleAtLeast, useTenant } from '@/lib/session'
import { useTRPC, type TRole } from '@/lib/trpc'

const RANK: Record<TRole, number> = { viewer: 0, developer: 1, admin: 2, owner: 3 }

/** Tenant-scoped bearer tokens for scripts and CI: created by developers and up, listed and revoked by admins. */
export default function TokensPage() {
  const trpc = useTRPC()
  const tenant = useTenant()
  const qc = useQueryClient()
  const canList = roleAtLeast(tenant.role, 'admin')
  const canCreate = roleAtLeast(tenant.role, 'developer')
  const list = useQuery(trpc.tokens.list.queryOptions({ tenantId: tenant.id }, { enabled: canList }))
  const [name, setName] = useState('')
  const [role, setRole] = useState<TRole>('viewer')
  const [ttlDays, setTtlDays] = useState('90')
  const create = useMutation(trpc.tokens.create.mutationOptions({ onSuccess: () => qc.invalidateQueries({ queryKey: trpc.tokens.pathKey() }) }))
  const revoke = useMutation(trpc.tokens.revoke.mutationOptions({ onSuccess: () => qc.invalidateQueries({ queryKey: trpc.tokens.pathKey() }) }))
  const roles = ZMemberRole.options.filter((r) => tenant.role && RANK[r] <= RANK[tenant.role])

  return (
    <>
      <PageHeader title="API tokens" subtitle={`Bearer tokens for scripts and CI, valid in ${tenant.name} only, with at most your role.`} />
      {canCreate ? (
        <Panel title="New token" className="mb-5" testId="new-token">
          <form
            className="grid gap-4 p-4 sm:grid-cols-4"
            onSubmit={(e) => {
              e.preventDefault()
              create.mutate({ tenantId: tenant.id, name, role, ttlDays: ttlDays ? Number(ttlDays) : null })
            }}
          >
            <Field label="Name" htmlFor="t-name" className="sm:col-span-2">
              <input id="t-name" className={inputCls} value={name} onChange={(e) => setName(e.target.value)} placeholder="ci-deploys" />
            </Field>
            <Field label="Role" htmlFor="t-role">
              <select id="t-role" className={inputCls} value={role} onChange={(e) => setRole(e.target.value as TRole)}>
                {roles.map((r) => (
                  <option key={r} value={r}>
                    {r}
                  </option>
                ))}
              </select>
            </Field>
            <Field label="Expires after (days)" htmlFor="t-ttl" hint="Empty: never.">
              <input id="t-ttl" type="number" min={1} className={inputCls} value={ttlDays} onChange={(e) => setTtlDays(e.target.value)} />
            </Field>
            <div className="sm:col-span-4">
              <ErrorBox error={create.error} />
              {create.data ? (
                <div className="mb-3 rounded-md bg-emerald-50 p-3 text-sm ring-1 ring-emerald-200" data-testid="token-created">
                  <p className="mb-1 text-emerald-800">Copy the token now; it is not shown again.</p>
                  <Mono className="break-all">{create.data.token}</Mono>
                  <p className="mt-2 text-xs text-slate-600">
                    Use it as <Mono>Authorization: Bearer …</Mono> on <Mono>/trpc/*</Mono>.
                  </p>
                </div>
              ) : null}
              <div className="flex justify-end">
                <Button type="submit" variant="primary" disabled={create.isPending || !name.trim()}>
                  {create.isPending ? 'Creating…' : 'Create token'}
                </Button>
              </div>
            </div>
          </form>
        </Panel>
      ) : null}
      {canList ? (
        <Panel title="Tokens" testId="tokens">
          <DataTable
            query={list}
            error={list.error ?? revoke.error}
            testId="tokens-table"
            columns={[{ label: 'Name' }, { label: 'Prefix' }, { label: 'Role' }, { label: 'Created by' }, { label: 'Last used' }, { label: 'Expires' }, {}]}
            empty={list.data?.length === 0 ? 'No tokens.' : null}
          >
            {list.data?.map((t) => (
              <tr key={t.id} className={trCls}>
                <td className={tdCls}>{t.name}</td>
                <td className={tdCls}>
                  <Mono>{t.prefix}…</Mono>
                </td>
                <td className={tdCls}>
                  <Badge>{t.role}</Badge>
                </td>
                <td className={tdCls}>{t.createdBy}</td>
                <td className={tdCls}>{t.lastUsedAt ? <RelTime date={t.lastUsedAt} /> : 'never'}</td>
                <td className={tdCls}>{t.expiresAt ? <RelTime date={t.expiresAt} /> : 'never'}</td>
                <td className={`${tdCls} text-right`}>
                  <ConfirmButton size="sm" onConfirm={() => revoke.mutate({ tenantId: tenant.id, id: t.id })} label="Revoke" question="Scripts using it stop working." confirmLabel="Revoke" pending={revoke.isPending} />
                </td>
              </tr>
            ))}
          </DataTable>
        </Panel>
      ) : (
        <p className="text-sm text-slate-500">Admins and owners see and revoke the tenant&apos;s tokens.</p>
      )}
    </>
  )
}
