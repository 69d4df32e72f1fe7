'use client'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { useForm } from 'react-hook-form'
import { ZAddMemberInput, ZMemberRole, type TAddMemberInput } from '@alveary/core/schemas'
import { DataTable } from '@/components/data-table'
import {
  Badge,
  Button,
  ConfirmButton,
  ErrorBox,
  Field,
  inputBase,
  inputCls,
  PageHeader,
  Panel,
  RelTime,
  tdCls,
  trCls,
} from '@/components/ui'
import { blankAsUndefined } from '@/lib/resolvers'
import { useMe, useTenant } from '@/lib/session'
import { useTRPC, type TMember, type TRole } from '@/lib/trpc'

const ROLES = ZMemberRole.options
const roleHelp: Record<TRole, string> = {
  owner: 'everything, including owners',
  admin: 'apps and members',
  developer: 'deploy, scale, delete apps',
  viewer: 'read only',
}
const roleTone = { owner: 'violet', admin: 'blue', developer: 'green', viewer: 'gray' } as const

interface AddForm {
  email: string
  role: TRole
  name: string
  password: string
}

function AddMember() {
  const trpc = useTRPC()
  const tenant = useTenant()
  const qc = useQueryClient()
  const form = useForm<AddForm, unknown, TAddMemberInput>({
    resolver: blankAsUndefined(ZAddMemberInput, ['name', 'password']) as never,
    defaultValues: { email: '', role: 'developer', name: '', password: '' },
  })
  const add = useMutation(
    trpc.members.add.mutationOptions({
      onSuccess: async () => {
        form.reset({ email: '', role: form.getValues('role'), name: '', password: '' })
        await qc.invalidateQueries({ queryKey: trpc.members.pathKey() })
      },
    }),
  )
  const errors = form.formState.errors
  return (
    <Panel title="Add member" testId="add-member">
      <form onSubmit={form.handleSubmit((v) => add.mutate({ tenantId: tenant.id, ...v }))} className="space-y-4 p-4" noValidate>
        <div className="grid gap-4 sm:grid-cols-2">
          <Field label="Email" htmlFor="m-email" error={errors.email?.message}>
            <input id="m-email" type="email" autoComplete="off" className={inputCls} aria-invalid={!!errors.email} {...form.register('email')} />
          </Field>
          <Field label="Role" htmlFor="m-role" error={errors.role?.message} hint={roleHelp[form.watch('role')]}>
            <select id="m-role" className={inputCls} {...form.register('role')}>
              {ROLES.map((r) => (
                <option key={r} value={r}>
                  {r}
                </option>
              ))}
            </select>
          </Field>
        </div>
        <div className="rounded-md bg-slate-50 p-3 ring-1 ring-slate-200">
          <p className="mb-3 text-xs text-slate-500">For a new account only: leave empty when the person already has an Alveary account.</p>
          <div className="grid gap-4 sm:grid-cols-2">
            <Field label="Name" htmlFor="m-name" error={errors.name?.message}>
              <input id="m-name" autoComplete="off" className={inputCls} aria-invalid={!!errors.name} {...form.register('name')} />
            </Field>
            <Field label="Initial password" htmlFor="m-password" error={errors.password?.message} hint="At least 8 characters.">
              <input id="m-password" type="password" autoComplete="new-password" className={inputCls} aria-invalid={!!errors.password} {...form.register('password')} />
            </Field>
          </div>
        </div>
        <ErrorBox error={add.error} />
        {add.isSuccess ? (
          <p className="text-sm text-emerald-700" data-testid="member-added">
            {add.data.email} added as {add.data.role}.
          </p>
        ) : null}
        <div className="flex justify-end">
          <Button type="submit" variant="primary" disabled={add.isPending} data-testid="add-member-submit">
            {add.isPending ? 'Adding…' : 'Add member'}
          </Button>
        </div>
      </form>
    </Panel>
  )
}

function MemberRow({ m, canManage, isMe }: { m: TMember; canManage: boolean; isMe: boolean }) {
  const trpc = useTRPC()
  const tenant = useTenant()
  const qc = useQueryClient()
  const done = { onSuccess: () => qc.invalidateQueries({ queryKey: trpc.members.pathKey() }) }
  const setRole = useMutation(trpc.members.setRole.mutationOptions(done))
  const remove = useMutation(trpc.members.remove.mutationOptions(done))
  const error = setRole.error ?? remove.error
  return (
    <tr className={trCls} data-testid="member-row" data-email={m.email}>
      <td className={tdCls}>
        <div className="font-medium text-slate-900">
          {m.name}
          {isMe ? <span className="ml-1.5 text-xs font-normal text-slate-400">(you)</span> : null}
        </div>
        {error ? <ErrorBox error={error} className="mt-1.5 py-1 text-xs" /> : null}
      </td>
      <td className={`${tdCls} text-slate-600`}>{m.email}</td>
      <td className={tdCls}>
        {canManage ? (
          <select
            aria-label={`Role of ${m.email}`}
            value={m.role}
            disabled={setRole.isPending}
            onChange={(e) => {
              remove.reset()
              setRole.mutate({ tenantId: tenant.id, userId: m.userId, role: e.target.value as TRole })
            }}
            className={`${inputBase} w-32`}
            data-testid="member-role"
          >
            {ROLES.map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
        ) : (
          <Badge tone={roleTone[m.role]}>{m.role}</Badge>
        )}
      </td>
      <td className={`${tdCls} text-slate-500`}>
        <RelTime date={m.createdAt} />
      </td>
      <td className={`${tdCls} text-right`}>
        {canManage ? (
          <ConfirmButton
            size="sm"
            label="Remove"
            question={`Remove ${m.email}?`}
            pending={remove.isPending}
            onConfirm={() => {
              setRole.reset()
              remove.mutate({ tenantId: tenant.id, userId: m.userId })
            }}
            testId="member-remove"
          />
        ) : null}
      </td>
    </tr>
  )
}

export default function MembersPage() {
  const trpc = useTRPC()
  const tenant = useTenant()
  const me = useMe()
  const members = useQuery(trpc.members.list.queryOptions({ tenantId: tenant.id }))
  const canManage = tenant.canManageMembers
  return (
    <>
      <title>{`Members · ${tenant.name} · Alveary`}</title>
      <PageHeader title="Members" subtitle={canManage ? `People with access to ${tenant.name}` : `People with access to ${tenant.name} (read only: owners and admins manage members)`} />
      <div className={canManage ? 'grid items-start gap-5 xl:grid-cols-[minmax(0,3fr)_minmax(0,2fr)]' : ''}>
        <Panel title={`Members${members.data ? ` (${members.data.length})` : ''}`}>
          <DataTable
            query={members}
            testId="members-table"
            columns={[{ label: 'Name' }, { label: 'Email' }, { label: 'Role' }, { label: 'Added' }, {}]}
            empty={members.data?.length === 0 ? 'No members yet.' : null}
          >
            {members.data?.map((m) => <MemberRow key={m.userId} m={m} canManage={canManage} isMe={m.userId === me.user.id} />)}
          </DataTable>
        </Panel>
        {canManage ? <AddMember /> : null}
      </div>
    </>
  )
}
