'use client'
import { useRouter } from 'next/navigation'
import { useEffect } from 'react'
import { ReceivedInvitations } from '@/components/received-invitations'
import { Loading, Panel } from '@/components/ui'
import { lastTenant, roleAtLeast, useMe } from '@/lib/session'

/**
 * The landing page: the apps of the user's tenant (the last one visited, else the first).
 * Operators see every tenant as viewers; they land on a tenant they are a member of, or
 * on the nodes page.
 */
export default function Home() {
  const me = useMe()
  const router = useRouter()
  const own = me.user.operator ? me.tenants.filter((t) => roleAtLeast(t.role, 'developer')) : me.tenants
  const last = lastTenant()
  const target = own.find((t) => t.slug === last) ?? own[0]
  const dest = target ? `/t/${target.slug}/apps` : me.user.operator ? '/ops/nodes' : null
  useEffect(() => {
    if (dest) router.replace(dest)
  }, [dest, router])
  if (dest) return <Loading />
  return (
    <Panel className="mx-auto mt-10 max-w-lg" bodyClassName="p-6 text-sm text-slate-600">
      <h1 className="mb-2 text-base font-semibold text-slate-900">You are not a member of any tenant yet</h1>
      <p className="mb-4">Ask a tenant owner to invite <b>{me.user.email}</b>.</p>
      <ReceivedInvitations />
    </Panel>
  )
}
