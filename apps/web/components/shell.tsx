'use client'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import clsx from 'clsx'
import Link from 'next/link'
import { useParams, usePathname, useRouter } from 'next/navigation'
import { useEffect, useState, type ReactNode } from 'react'
import { Logo } from '@/components/logo'
import { useLiveStatus } from '@/lib/live'
import { lastTenant, roleAtLeast, useMe } from '@/lib/session'
import { useTRPC } from '@/lib/trpc'

function NavLink({ href, children, icon, match, testId }: { href: string; children: ReactNode; icon: ReactNode; match?: (p: string) => boolean; testId?: string }) {
  const pathname = usePathname()
  const active = match ? match(pathname) : pathname === href || pathname.startsWith(`${href}/`)
  return (
    <Link
      href={href}
      data-testid={testId}
      aria-current={active ? 'page' : undefined}
      className={clsx(
        'flex items-center gap-2.5 rounded-md px-2.5 py-1.5 text-sm transition-colors',
        active ? 'bg-white/10 font-medium text-white' : 'text-slate-400 hover:bg-white/5 hover:text-slate-100',
      )}
    >
      <span className={clsx('size-4 shrink-0', active ? 'text-amber-400' : 'text-slate-500')}>{icon}</span>
      {children}
    </Link>
  )
}

const icons = {
  apps: (
    <svg viewBox="0 0 20 20" fill="currentColor">
      <path d="M3 3h6v6H3zM11 3h6v6h-6zM3 11h6v6H3zM11 11h6v6h-6z" opacity=".9" />
    </svg>
  ),
  lb: (
    <svg viewBox="0 0 20 20" fill="currentColor">
      <path d="M9 2h2v5h4a2 2 0 0 1 2 2v3h1v5h-4v-5h1V9h-4v3h1v5H8v-5h1V9H5v3h1v5H2v-5h1V9a2 2 0 0 1 2-2h4z" />
    </svg>
  ),
  members: (
    <svg viewBox="0 0 20 20" fill="currentColor">
      <path d="M7 9a3 3 0 1 0 0-6 3 3 0 0 0 0 6zm6.5 0a2.5 2.5 0 1 0 0-5 2.5 2.5 0 0 0 0 5zM1 16c0-3 2.7-5 6-5s6 2 6 5v1H1zm13.5 1v-1c0-1.6-.6-3-1.7-4 .2 0 .5-.1.7-.1 2.8 0 4.5 1.7 4.5 4.1v1z" />
    </svg>
  ),
  networks: (
    <svg viewBox="0 0 20 20" fill="currentColor">
      <path d="M8 2h4v4H11v2h5v3h1v5h-4v-5h1V10H6v1h1v5H3v-5h1V8h5V6H8z" />
    </svg>
  ),
  events: (
    <svg viewBox="0 0 20 20" fill="currentColor">
      <path d="M3 4h14v2H3zm0 5h14v2H3zm0 5h9v2H3z" />
    </svg>
  ),
  tokens: (
    <svg viewBox="0 0 20 20" fill="currentColor">
      <path d="M12.5 2a5.5 5.5 0 0 0-5.2 7.3L2 14.6V18h3.4v-2h2v-2h2l1.3-1.3A5.5 5.5 0 1 0 12.5 2zm1.5 3a1.5 1.5 0 1 1 0 3 1.5 1.5 0 0 1 0-3z" />
    </svg>
  ),
  nodes: (
    <svg viewBox="0 0 20 20" fill="currentColor">
      <path d="M3 3h14v5H3zm0 7h14v5H3zm2 6h10v1H5zM5 5h2v1H5zm0 7h2v1H5z" />
    </svg>
  ),
  scheduler: (
    <svg viewBox="0 0 20 20" fill="currentColor">
      <path d="M2 4h7v3H2zm0 5h11v3H2zm0 5h5v3H2zm13-10h3v3h-3zm-4 5h7v3h-7zm-2 5h9v3H9z" />
    </svg>
  ),
  moves: (
    <svg viewBox="0 0 20 20" fill="currentColor">
      <path d="M2 6h11V3l5 4.5-5 4.5V9H2zm16 5H7V8l-5 4.5L7 17v-3h11z" />
    </svg>
  ),
  tenants: (
    <svg viewBox="0 0 20 20" fill="currentColor">
      <path d="M2 17V7l5-3 5 3v10H2zm10 0V9h6v8h-6zM5 9h1v1H5zm3 0h1v1H8zm-3 3h1v1H5zm3 0h1v1H8zm6-1h2v1h-2zm0 3h2v1h-2z" />
    </svg>
  ),
}

function TenantSwitcher({ current }: { current: string | null }) {
  const me = useMe()
  const router = useRouter()
  if (!me.tenants.length) return <div className="rounded-md border border-dashed border-slate-700 px-2.5 py-1.5 text-xs text-slate-500">No tenants yet</div>
  return (
    <select
      aria-label="Tenant"
      data-testid="tenant-switcher"
      value={current ?? ''}
      onChange={(e) => router.push(`/t/${e.target.value}/apps`)}
      className="block w-full cursor-pointer rounded-md border border-slate-700 bg-slate-800 px-2 py-1.5 text-sm font-medium text-slate-100 focus:border-slate-500 focus:outline-none"
    >
      {current ? null : (
        <option value="" disabled>
          Select a tenant…
        </option>
      )}
      {me.tenants.map((t) => (
        <option key={t.id} value={t.slug}>
          {t.name} ({t.slug})
        </option>
      ))}
    </select>
  )
}

function LivePill() {
  const status = useLiveStatus()
  if (status === 'off') return null
  const label = status === 'live' ? 'Live' : status === 'connecting' ? 'Connecting' : 'Offline'
  const color = status === 'live' ? 'bg-emerald-500' : status === 'connecting' ? 'bg-amber-500' : 'bg-red-500'
  return (
    <span className="inline-flex items-center gap-1.5 rounded-full bg-slate-100 px-2 py-0.5 text-xs font-medium text-slate-600" data-testid="live-status" data-status={status} title="Pages update live from the API's change stream">
      <span className={clsx('size-1.5 rounded-full', color, status !== 'live' && 'animate-pulse')} />
      {label}
    </span>
  )
}

/** A pill in the header while invitations wait for an answer. */
function InvitationsPill() {
  const trpc = useTRPC()
  const received = useQuery(trpc.invitations.received.queryOptions(undefined, { staleTime: 30_000 }))
  const n = received.data?.length ?? 0
  if (!n) return null
  return (
    <Link href="/invitations" className="inline-flex items-center gap-1.5 rounded-full bg-amber-100 px-2 py-0.5 text-xs font-medium text-amber-900 hover:bg-amber-200" data-testid="invitations-pill">
      <span className="size-1.5 rounded-full bg-amber-500" />
      {n === 1 ? '1 invitation' : `${n} invitations`}
    </Link>
  )
}

function UserMenu() {
  const me = useMe()
  const trpc = useTRPC()
  const qc = useQueryClient()
  const logout = useMutation(
    trpc.auth.logout.mutationOptions({
      onSettled: () => {
        qc.clear()
        window.location.assign('/login')
      },
    }),
  )
  return (
    <div className="flex items-center gap-3">
      <div className="hidden text-right leading-tight sm:block">
        <div className="text-sm font-medium text-slate-800" data-testid="current-user">
          {me.user.name}
        </div>
        <div className="text-xs text-slate-500">
          {me.user.email}
          {me.user.operator ? <span className="ml-1.5 rounded bg-violet-100 px-1 py-px text-[10px] font-semibold uppercase text-violet-700">operator</span> : null}
        </div>
      </div>
      <button
        type="button"
        onClick={() => logout.mutate()}
        disabled={logout.isPending}
        data-testid="logout"
        className="rounded-md border border-slate-300 bg-white px-2.5 py-1 text-xs font-medium text-slate-700 hover:bg-slate-50"
      >
        Log out
      </button>
    </div>
  )
}

export function Shell({ children }: { children: ReactNode }) {
  const me = useMe()
  const params = useParams<{ slug?: string }>()
  const [remembered, setRemembered] = useState<string | null>(null)
  useEffect(() => setRemembered(lastTenant()), [params.slug])
  const slug = params.slug ?? (remembered && me.tenants.some((t) => t.slug === remembered) ? remembered : null) ?? me.tenants[0]?.slug ?? null
  const tenant = me.tenants.find((t) => t.slug === slug)

  return (
    <div className="flex min-h-screen">
      <div className="w-60 shrink-0 bg-slate-900">
      <aside className="sticky top-0 flex h-screen flex-col px-3 py-4">
        <Link href="/" className="mb-5 flex items-center gap-2 px-1.5 text-white">
          <Logo className="size-6" />
          <span className="text-lg font-semibold tracking-tight">Alveary</span>
        </Link>
        <div className="mb-1.5 px-1.5 text-[11px] font-semibold uppercase tracking-wider text-slate-500">Tenant</div>
        <TenantSwitcher current={slug} />
        {slug && tenant ? (
          <nav className="mt-3 space-y-0.5">
            <NavLink href={`/t/${slug}/apps`} icon={icons.apps} testId="nav-apps">
              Apps
            </NavLink>
            <NavLink href={`/t/${slug}/load-balancers`} icon={icons.lb} testId="nav-lbs">
              Load balancers
            </NavLink>
            <NavLink href={`/t/${slug}/networks`} icon={icons.networks} testId="nav-networks">
              Networks
            </NavLink>
            <NavLink href={`/t/${slug}/members`} icon={icons.members} testId="nav-members">
              Members
            </NavLink>
            <NavLink href={`/t/${slug}/events`} icon={icons.events} testId="nav-events">
              Events
            </NavLink>
            {roleAtLeast(tenant.role, 'admin') || me.user.operator ? (
              <NavLink href={`/t/${slug}/audit`} icon={icons.events} testId="nav-audit">
                Audit trail
              </NavLink>
            ) : null}
            {roleAtLeast(tenant.role, 'developer') ? (
              <NavLink href={`/t/${slug}/tokens`} icon={icons.tokens} testId="nav-tokens">
                API tokens
              </NavLink>
            ) : null}
          </nav>
        ) : null}
        {me.user.operator ? (
          <>
            <div className="mb-1.5 mt-6 px-1.5 text-[11px] font-semibold uppercase tracking-wider text-slate-500">Platform</div>
            <nav className="space-y-0.5">
              <NavLink href="/ops/nodes" icon={icons.nodes} testId="nav-nodes">
                Nodes
              </NavLink>
              <NavLink href="/ops/scheduler" icon={icons.scheduler} testId="nav-scheduler">
                Scheduler
              </NavLink>
              <NavLink href="/ops/moves" icon={icons.moves} testId="nav-moves">
                Moves
              </NavLink>
              <NavLink href="/admin/tenants" icon={icons.tenants} testId="nav-tenants">
                Tenants
              </NavLink>
              <NavLink href="/ops/audit" icon={icons.events} testId="nav-platform-audit">
                Audit trail
              </NavLink>
            </nav>
          </>
        ) : null}
        <div className="mt-auto space-y-1 px-1.5 text-[11px] text-slate-600">
          {/* Swagger UI of the REST API's OpenAPI document, served by the BFF (not a console page). */}
          <a href="/api/v1/docs/" target="_blank" rel="noreferrer" className="block text-slate-400 hover:text-white" data-testid="nav-api-reference">
            API reference (REST)
          </a>
          <div>Alveary console</div>
        </div>
      </aside>
      </div>
      <div className="flex min-w-0 flex-1 flex-col">
        <header className="sticky top-0 z-10 flex h-12 items-center justify-between gap-4 border-b border-slate-200 bg-white/95 px-6 backdrop-blur">
          <div className="flex min-w-0 items-center gap-2 text-sm text-slate-500">
            {params.slug && tenant ? (
              <>
                <span className="truncate font-medium text-slate-800">{tenant.name}</span>
                {tenant.role ? <span className="rounded bg-slate-100 px-1.5 py-px text-xs text-slate-600">{tenant.role}</span> : null}
              </>
            ) : null}
          </div>
          <div className="flex items-center gap-4">
            <InvitationsPill />
            <LivePill />
            <UserMenu />
          </div>
        </header>
        <main className="min-w-0 flex-1 px-6 py-6">
          <div className="mx-auto max-w-7xl">{children}</div>
        </main>
      </div>
    </div>
  )
}
