'use client'
import { createContext, useContext } from 'react'
import type { TMe, TRole } from './trpc'

export const MeContext = createContext<TMe | null>(null)

export function useMe(): TMe {
  const me = useContext(MeContext)
  if (!me) throw new Error('useMe outside the console layout')
  return me
}

export interface TenantCtx {
  id: string
  slug: string
  name: string
  /** The caller's role; operators who are not members read as viewer. */
  role: TRole | null
  /** Deploy, scale, delete apps. */
  canDeploy: boolean
  /** Invite members, change roles (owners and admins; operators only as such members). */
  canManageMembers: boolean
}

export const TenantContext = createContext<TenantCtx | null>(null)

export function useTenant(): TenantCtx {
  const t = useContext(TenantContext)
  if (!t) throw new Error('useTenant outside a tenant page')
  return t
}

const RANK: Record<TRole, number> = { viewer: 0, developer: 1, admin: 2, owner: 3 }
export function roleAtLeast(role: TRole | null | undefined, min: TRole): boolean {
  return !!role && RANK[role] >= RANK[min]
}

const LAST_TENANT = 'alveary.lastTenant'
export function rememberTenant(slug: string) {
  try {
    localStorage.setItem(LAST_TENANT, slug)
  } catch {
    /* private mode */
  }
}
export function lastTenant(): string | null {
  try {
    return localStorage.getItem(LAST_TENANT)
  } catch {
    return null
  }
}
