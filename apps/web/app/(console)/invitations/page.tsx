'use client'
import { ReceivedInvitations } from '@/components/received-invitations'
import { PageHeader, Panel } from '@/components/ui'

export default function InvitationsPage() {
  return (
    <>
      <title>Invitations · Alveary</title>
      <PageHeader title="Invitations" subtitle="Tenants that invited you. You join only the ones you accept." />
      <Panel bodyClassName="p-4" testId="invitations">
        <ReceivedInvitations emptyText="No invitations for you right now." />
      </Panel>
    </>
  )
}
