import type { TApp, TAppDetail } from '@/lib/trpc'

/** One word for an app, from desired, running and crashing replicas (the API counts crashes the same way for the list and the app page). */
export function appState(a: Pick<TApp, 'deleting' | 'replicas' | 'running' | 'crashing'>): { state: string; label: string } {
  if (a.deleting) return { state: 'deleting', label: 'deleting' }
  if (a.replicas === 0) return { state: 'stopped', label: 'scaled to 0' }
  if (a.running >= a.replicas) return { state: 'running', label: 'running' }
  if (a.crashing > 0) return { state: 'failed', label: 'failing' }
  return { state: 'pending', label: a.running === 0 ? 'starting' : 'progressing' }
}

/** Like appState, and says "unschedulable" when no replica can be placed (detail has instances). */
export function appDetailState(a: TAppDetail): { state: string; label: string } {
  const base = appState(a)
  if (base.state !== 'pending') return base
  const active = a.instances.filter((i) => i.desiredState === 'running')
  if (active.length && active.every((i) => i.state === 'pending' && i.pendingReason)) return { state: 'pending', label: 'unschedulable' }
  return base
}
