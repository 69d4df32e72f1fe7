import type { TApp, TAppDetail } from '@/lib/trpc'

/** One word for an app, from desired vs running replicas. */
export function appState(a: Pick<TApp, 'deleting' | 'replicas' | 'running'>): { state: string; label: string } {
  if (a.deleting) return { state: 'deleting', label: 'deleting' }
  if (a.replicas === 0) return { state: 'stopped', label: 'scaled to 0' }
  if (a.running >= a.replicas) return { state: 'running', label: 'running' }
  return { state: 'pending', label: a.running === 0 ? 'starting' : 'progressing' }
}

/** Like appState, and says "failing" when replicas keep crashing (detail has instances). */
export function appDetailState(a: TAppDetail): { state: string; label: string } {
  const base = appState(a)
  if (base.state !== 'pending') return base
  const active = a.instances.filter((i) => i.desiredState === 'running')
  const crashing = active.some((i) => i.state === 'failed' || (i.state === 'exited' && i.exitCode !== 0) || (i.state !== 'running' && i.restarts > 0))
  if (crashing) return { state: 'failed', label: 'failing' }
  if (active.length && active.every((i) => i.state === 'pending' && i.pendingReason)) return { state: 'pending', label: 'unschedulable' }
  return base
}
