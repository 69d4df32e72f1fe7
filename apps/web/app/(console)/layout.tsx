'use client'
import { useQuery } from '@tanstack/react-query'
import type { ReactNode } from 'react'
import { Shell } from '@/components/shell'
import { Loading } from '@/components/ui'
import { errorMessage } from '@/lib/errors'
import { LiveStatusProvider } from '@/lib/live'
import { MeContext } from '@/lib/session'
import { errorCode, useTRPC } from '@/lib/trpc'

export default function ConsoleLayout({ children }: { children: ReactNode }) {
  const trpc = useTRPC()
  const me = useQuery(trpc.auth.me.queryOptions(undefined, { staleTime: 30_000 }))
  if (me.isPending || errorCode(me.error) === 'UNAUTHORIZED')
    return (
      <div className="flex min-h-screen items-center justify-center">
        <Loading />
      </div>
    )
  if (me.isError)
    return (
      <div className="flex min-h-screen items-center justify-center p-6">
        <div className="max-w-md rounded-lg border border-red-200 bg-white p-5 text-sm shadow-sm">
          <div className="mb-1 font-semibold text-red-700">The console cannot load your session</div>
          <div className="text-slate-600">{errorMessage(me.error)}</div>
          <button className="mt-3 text-sm font-medium text-slate-900 underline" onClick={() => void me.refetch()}>
            Try again
          </button>
        </div>
      </div>
    )
  return (
    <MeContext.Provider value={me.data}>
      <LiveStatusProvider>
        <Shell>{children}</Shell>
      </LiveStatusProvider>
    </MeContext.Provider>
  )
}
