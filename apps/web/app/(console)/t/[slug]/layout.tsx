'use client'
import { useParams } from 'next/navigation'
import { useEffect, useMemo, type ReactNode } from 'react'
import { Panel } from '@/components/ui'
import { useTenantLive } from '@/lib/live'
import { rememberTenant, roleAtLeast, TenantContext, useMe, type TenantCtx } from '@/lib/session'

function TenantLive({ tenantId }: { tenantId: string }) {
  useTenantLive(tenantId)
  return null
}

export default function TenantLayout({ children }: { children: ReactNode }) {
  const { slug } = useParams<{ slug: string }>()
  const me = useMe()
  const t = me.tenants.find((x) => x.slug === slug)
  useEffect(() => {
    if (t) rememberTenant(t.slug)
  }, [t])
  const ctx = useMemo<TenantCtx | null>(
    () =>
      t
        ? {
            id: t.id,
            slug: t.slug,
            name: t.name,
            role: t.role,
            canDeploy: roleAtLeast(t.role, 'developer'),
            canManageMembers: roleAtLeast(t.role, 'admin'),
          }
        : null,
    [t],
  )
  if (!ctx)
    return (
      <Panel className="mx-auto mt-10 max-w-lg" bodyClassName="p-6 text-sm text-slate-600">
        <h1 className="mb-2 text-base font-semibold text-slate-900">Tenant not found</h1>
        There is no tenant <b>{slug}</b>, or you are not a member of it.
      </Panel>
    )
  return (
    <TenantContext.Provider value={ctx}>
      <TenantLive key={ctx.id} tenantId={ctx.id} />
      {children}
    </TenantContext.Provider>
  )
}
