'use client'
import { AuditTrail } from '@/components/audit'
import { PageHeader } from '@/components/ui'

export default function PlatformAuditPage() {
  return (
    <>
      <title>Audit trail · Alveary</title>
      <PageHeader title="Audit trail" subtitle="Every change in every tenant and on the platform (nodes, join tokens, agent joins, sign-ins), failures included." />
      <AuditTrail />
    </>
  )
}
