'use client'
import { AuditTrail } from '@/components/audit'
import { PageHeader } from '@/components/ui'
import { useTenant } from '@/lib/session'

export default function TenantAuditPage() {
  const tenant = useTenant()
  return (
    <>
      <title>{`Audit trail · ${tenant.name} · Alveary`}</title>
      <PageHeader title="Audit trail" subtitle="Every change to this tenant through the console, the API, the CLI, with who, from where and the result (refused ones included)." />
      <AuditTrail tenantId={tenant.id} />
    </>
  )
}
