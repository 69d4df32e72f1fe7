'use client'
import { useQueryClient, type QueryKey } from '@tanstack/react-query'
import { useSubscription } from '@trpc/tanstack-react-query'
import { createContext, useCallback, useContext, useEffect, useRef, useState, type ReactNode } from 'react'
import { useTRPC } from './trpc'

type LiveStatus = 'connecting' | 'live' | 'error' | 'off'

/** Collects query keys to invalidate and flushes them together, at most every 200 ms. */
function useBatchedInvalidate() {
  const qc = useQueryClient()
  const pending = useRef(new Map<string, QueryKey>())
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null)
  useEffect(
    () => () => {
      if (timer.current) clearTimeout(timer.current)
    },
    [],
  )
  return useCallback(
    (keys: QueryKey[]) => {
      for (const k of keys) pending.current.set(JSON.stringify(k), k)
      if (timer.current) return
      timer.current = setTimeout(() => {
        timer.current = null
        const batch = [...pending.current.values()]
        pending.current.clear()
        for (const queryKey of batch) void qc.invalidateQueries({ queryKey })
      }, 200)
    },
    [qc],
  )
}

function statusOf(s: string): LiveStatus {
  if (s === 'pending') return 'live'
  if (s === 'connecting') return 'connecting'
  if (s === 'error') return 'error'
  return 'off'
}

const LiveContext = createContext<{ status: LiveStatus; set: (s: LiveStatus) => void }>({ status: 'off', set: () => {} })

export function LiveStatusProvider({ children }: { children: ReactNode }) {
  const [status, set] = useState<LiveStatus>('off')
  return <LiveContext.Provider value={{ status, set }}>{children}</LiveContext.Provider>
}

export function useLiveStatus(): LiveStatus {
  return useContext(LiveContext).status
}

function useReportStatus(status: LiveStatus) {
  const { set } = useContext(LiveContext)
  useEffect(() => {
    set(status)
    return () => set('off')
  }, [status, set])
}

/**
 * Keeps every query of one tenant fresh: the BFF streams change hints ({kind, what, …})
 * and we invalidate the queries they touch. The first message ("hello") also arrives after
 * each reconnect, so it refreshes everything that might have been missed.
 */
export function useTenantLive(tenantId: string | undefined) {
  const trpc = useTRPC()
  const invalidate = useBatchedInvalidate()
  const sub = useSubscription(
    trpc.live.tenant.subscriptionOptions(
      { tenantId: tenantId ?? '' },
      {
        enabled: !!tenantId,
        onData: (c) => {
          // Load balancers show their backends' states too.
          const apps = [trpc.apps.pathKey(), trpc.tenants.usage.pathKey(), trpc.events.pathKey(), trpc.loadBalancers.pathKey(), trpc.networks.pathKey()]
          const members = [trpc.members.pathKey(), trpc.invitations.list.pathKey(), trpc.events.pathKey(), trpc.auth.me.pathKey()]
          const tenant = [trpc.tenants.pathKey(), trpc.auth.me.pathKey(), trpc.events.pathKey()]
          switch (c.kind === 'tenant' ? c.what : c.kind) {
            case 'app':
            case 'instances':
              return invalidate(apps)
            case 'member':
              return invalidate(members)
            case 'lb':
              return invalidate([trpc.loadBalancers.pathKey(), trpc.events.pathKey()])
            case 'network':
              return invalidate([trpc.networks.pathKey(), trpc.apps.pathKey(), trpc.events.pathKey()])
            case 'tenant':
              return invalidate(tenant)
            default:
              return invalidate([...apps, ...members, ...tenant])
          }
        },
      },
    ),
  )
  useReportStatus(statusOf(sub.status))
}

/** Operator pages: nodes, join tokens, the tenant list and the scheduler's chart, live. */
export function useFleetLive(enabled: boolean) {
  const trpc = useTRPC()
  const invalidate = useBatchedInvalidate()
  const sub = useSubscription(
    trpc.live.fleet.subscriptionOptions(undefined, {
      enabled,
      onData: (c) => {
        const nodes = [trpc.nodes.pathKey()]
        const tokens = [trpc.joinTokens.pathKey()]
        const tenants = [trpc.tenants.pathKey(), trpc.auth.me.pathKey()]
        const moves = [trpc.moves.pathKey()]
        const scheduler = [trpc.nodes.schedulerSeries.pathKey()]
        switch (c.kind === 'fleet' ? c.what : c.kind) {
          case 'move':
            return invalidate(moves)
          case 'node':
          case 'heartbeat':
            return invalidate(nodes)
          case 'jointoken':
            return invalidate(tokens)
          case 'tenants':
            return invalidate(tenants)
          case 'instances':
            return invalidate([...nodes, ...moves])
          case 'scheduler':
            return invalidate(scheduler)
          default:
            return invalidate([...nodes, ...tokens, ...tenants])
        }
      },
    }),
  )
  useReportStatus(statusOf(sub.status))
}
