'use client'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { Badge, Button, ErrorBox, Loading, RelTime } from '@/components/ui'
import { useTRPC, type TReceivedInvitation } from '@/lib/trpc'

/** Accept or decline one invitation; accepting opens the tenant. */
export function InvitationAnswer({ invitation, onDeclined }: { invitation: TReceivedInvitation; onDeclined?: () => void }) {
  const trpc = useTRPC()
  const qc = useQueryClient()
  const accept = useMutation(
    trpc.invitations.accept.mutationOptions({
      // A full load: the session's tenant list changed.
      onSuccess: ({ tenantSlug }) => window.location.assign(`/t/${tenantSlug}/apps`),
    }),
  )
  const decline = useMutation(
    trpc.invitations.decline.mutationOptions({
      onSuccess: async () => {
        await qc.invalidateQueries({ queryKey: trpc.invitations.received.pathKey() })
        onDeclined?.()
      },
    }),
  )
  return (
    <div className="space-y-2">
      <div className="flex gap-2">
        <Button variant="primary" disabled={accept.isPending || accept.isSuccess || decline.isPending} onClick={() => accept.mutate({ id: invitation.id })} data-testid="invitation-accept">
          {accept.isPending || accept.isSuccess ? 'Joining…' : `Join ${invitation.tenant.name}`}
        </Button>
        <Button disabled={accept.isPending || decline.isPending} onClick={() => decline.mutate({ id: invitation.id })} data-testid="invitation-decline">
          Decline
        </Button>
      </div>
      <ErrorBox error={accept.error ?? decline.error} />
    </div>
  )
}

export function InvitationSummary({ invitation }: { invitation: TReceivedInvitation }) {
  return (
    <p className="text-sm text-slate-700">
      <b>{invitation.invitedBy}</b> invites <b>{invitation.email}</b> to <b>{invitation.tenant.name}</b> as <Badge>{invitation.role}</Badge>
      <span className="ml-1 text-xs text-slate-500">
        (expires <RelTime date={invitation.expiresAt} />)
      </span>
    </p>
  )
}

/** The invitations addressed to the signed-in person, each with Join / Decline. */
export function ReceivedInvitations({ emptyText }: { emptyText?: string }) {
  const trpc = useTRPC()
  const received = useQuery(trpc.invitations.received.queryOptions())
  if (received.isPending) return <Loading />
  if (received.isError) return <ErrorBox error={received.error} />
  if (!received.data.length) return emptyText ? <p className="text-sm text-slate-500">{emptyText}</p> : null
  return (
    <ul className="divide-y divide-slate-100" data-testid="received-invitations">
      {received.data.map((i) => (
        <li key={i.id} className="space-y-2 py-3 first:pt-0 last:pb-0" data-testid="received-invitation" data-tenant={i.tenant.slug}>
          <InvitationSummary invitation={i} />
          <InvitationAnswer invitation={i} />
        </li>
      ))}
    </ul>
  )
}
