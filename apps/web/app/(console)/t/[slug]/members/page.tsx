'use client'
import { zodResolver } from '@hookform/resolvers/zod'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { useForm } from 'react-hook-form'
import { ZInviteInput, ZMemberRole, type TInviteInput } from '@alveary/core/schemas'
import { DataTable } from '@/components/data-table'
import { InviteLink } from '@/components/invite-link'
import { Badge, Button, ConfirmButton, ErrorBox, Field, inputBase, inputCls, PageHeader, Panel, RelTime, tdCls, trCls } from '@/components/ui'
import { useMe, useTenant } from '@/lib/session'
import { useTRPC, type TInvitation, type TMember, type TRole } from '@/lib/trpc'

const ROLES = ZMemberRole.options
const roleHelp: Record<TRole, string> = {
  owner: 'everything, including owners',
  admin: 'apps and members',
  developer: 'deploy, scale, delete apps',
  viewer: 'read only',
}
const roleTone = { owner: 'violet', admin: 'blue', developer: 'green', viewer: 'gray' } as const
const inviteResolver = zodResolver(ZInviteInput)

/**
 * Invites a person by e-mail. `firstOwner`: an operator giving an ownerless tenant its owner
 * (the only invitation an operator may make in a tenant it is not an admin of).
 */
function Invite({ firstOwner }: { firstOwner: boolean }) {
  const trpc = useTRPC()
  const tenant = useTenant()
  const qc = useQueryClient()
  const roles = firstOwner ? (['owner'] as const) : tenant.role === 'owner' ? ROLES : ROLES.filter((r) => r !== 'owner')
  const form = useForm<TInviteInput>({ resolver: inviteResolver as never, defaultValues: { email: '', role: firstOwner ? 'owner' : 'developer' } })
  const invite = useMutation(
    trpc.invitations.create.mutationOptions({
      onSuccess: async () => {
        form.reset({ email: '', role: form.getValues('role') })
        await qc.invalidateQueries({ queryKey: trpc.invitations.list.pathKey() })
      },
    }),
  )
  const errors = form.formState.errors
  return (
    <Panel title={firstOwner ? 'Invite the first owner' : 'Invite someone'} testId="invite">
      <form onSubmit={form.handleSubmit((v) => invite.mutate({ tenantId: tenant.id, ...v }))} className="space-y-4 p-4" noValidate>
        {firstOwner ? (
          <p className="text-sm text-slate-600">
            {tenant.name} has no owner yet. As an operator you can invite its first owner; the owner then invites everyone else. An operator account cannot accept this invitation.
          </p>
        ) : null}
        <div className="grid gap-4 sm:grid-cols-[minmax(0,2fr)_minmax(0,1fr)]">
          <Field label="Email" htmlFor="i-email" error={errors.email?.message}>
            <input id="i-email" type="email" autoComplete="off" className={inputCls} aria-invalid={!!errors.email} {...form.register('email')} />
          </Field>
          <Field label="Role" htmlFor="i-role" error={errors.role?.message} hint={roleHelp[form.watch('role')]}>
            <select id="i-role" className={inputCls} disabled={firstOwner} {...form.register('role')}>
              {roles.map((r) => (
                <option key={r} value={r}>
                  {r}
                </option>
              ))}
            </select>
          </Field>
        </div>
        <p className="text-xs text-slate-500">They join only if they accept. Whether or not the address already has an Alveary account, you get a link to send them.</p>
        <ErrorBox error={invite.error} />
        {invite.data ? <InviteLink email={invite.data.invitation.email} token={invite.data.token} /> : null}
        <div className="flex justify-end">
          <Button type="submit" variant="primary" disabled={invite.isPending} data-testid="invite-submit">
            {invite.isPending ? 'Inviting…' : 'Invite'}
          </Button>
        </div>
      </form>
    </Panel>
  )
}

function Pending({ invitations, canWithdraw, query }: { invitations: TInvitation[] | undefined; canWithdraw: boolean; query: { error: unknown; isPending: boolean } }) {
  const trpc = useTRPC()
  const tenant = useTenant()
  const qc = useQueryClient()
  const revoke = useMutation(trpc.invitations.revoke.mutationOptions({ onSuccess: () => qc.invalidateQueries({ queryKey: trpc.invitations.list.pathKey() }) }))
  return (
    <Panel title={`Pending invitations${invitations ? ` (${invitations.length})` : ''}`} testId="pending-invitations">
      <DataTable
        query={query}
        error={query.error ?? revoke.error}
        testId="invitations-table"
        columns={[{ label: 'Email' }, { label: 'Role' }, { label: 'Invited by' }, { label: 'Expires' }, {}]}
        empty={invitations?.length === 0 ? 'No pending invitations.' : null}
      >
        {invitations?.map((i) => {
          const expired = new Date(i.expiresAt).getTime() < Date.now()
          return (
            <tr key={i.id} className={trCls} data-testid="invitation-row" data-email={i.email}>
              <td className={`${tdCls} text-slate-700`}>{i.email}</td>
              <td className={tdCls}>
                <Badge tone={roleTone[i.role]}>{i.role}</Badge>
              </td>
              <td className={`${tdCls} text-slate-600`}>{i.invitedBy}</td>
              <td className={tdCls}>{expired ? <Badge tone="red">expired</Badge> : <RelTime date={i.expiresAt} className="text-slate-500" />}</td>
              <td className={`${tdCls} text-right`}>
                {canWithdraw ? (
                  <ConfirmButton size="sm" label="Withdraw" question="The link stops working." pending={revoke.isPending} onConfirm={() => revoke.mutate({ tenantId: tenant.id, id: i.id })} testId="invitation-withdraw" />
                ) : null}
              </td>
            </tr>
          )
        })}
      </DataTable>
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
  // An operator outside the tenant may only give an ownerless tenant its first owner.
  const firstOwner = !canManage && me.user.operator && members.data !== undefined && !members.data.some((m) => m.role === 'owner')
  const seesInvitations = canManage || me.user.operator
  const invitations = useQuery(trpc.invitations.list.queryOptions({ tenantId: tenant.id }, { enabled: seesInvitations }))
  return (
    <>
      <title>{`Members · ${tenant.name} · Alveary`}</title>
      <PageHeader
        title="Members"
        subtitle={canManage ? `People with access to ${tenant.name}` : `People with access to ${tenant.name} (read only: owners and admins invite and manage members)`}
      />
      <div className={canManage || firstOwner ? 'grid items-start gap-5 xl:grid-cols-[minmax(0,3fr)_minmax(0,2fr)]' : ''}>
        <div className="space-y-5">
          <Panel title={`Members${members.data ? ` (${members.data.length})` : ''}`}>
            <DataTable
              query={members}
              testId="members-table"
              columns={[{ label: 'Name' }, { label: 'Email' }, { label: 'Role' }, { label: 'Joined' }, {}]}
              empty={members.data?.length === 0 ? 'No members yet.' : null}
            >
              {members.data?.map((m) => <MemberRow key={m.userId} m={m} canManage={canManage} isMe={m.userId === me.user.id} />)}
            </DataTable>
          </Panel>
          {seesInvitations ? <Pending invitations={invitations.data} canWithdraw={canManage || firstOwner} query={invitations} /> : null}
        </div>
        {canManage || firstOwner ? <Invite firstOwner={firstOwner} /> : null}
      </div>
    </>
  )
}
