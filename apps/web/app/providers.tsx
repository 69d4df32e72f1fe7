'use client'
import { MutationCache, QueryCache, QueryClient, QueryClientProvider } from '@tanstack/react-query'
import { useState, type ReactNode } from 'react'
import { errorCode, makeTrpcClient, TRPCProvider } from '@/lib/trpc'

/** Pages that work without a session. */
const PUBLIC = new Set(['/login', '/invite'])

function toLogin() {
  if (typeof window === 'undefined' || PUBLIC.has(window.location.pathname)) return
  const next = window.location.pathname + window.location.search
  window.location.assign(`/login${next === '/' ? '' : `?next=${encodeURIComponent(next)}`}`)
}

export function Providers({ children }: { children: ReactNode }) {
  const [queryClient] = useState(
    () =>
      new QueryClient({
        defaultOptions: {
          queries: {
            staleTime: 5_000,
            retry: (count, err) => {
              const code = errorCode(err)
              if (code && code !== 'INTERNAL_SERVER_ERROR') return false
              return count < 2
            },
          },
        },
        // A session that expired or was revoked: back to the login page, from anywhere.
        queryCache: new QueryCache({ onError: (err) => errorCode(err) === 'UNAUTHORIZED' && toLogin() }),
        mutationCache: new MutationCache({ onError: (err) => errorCode(err) === 'UNAUTHORIZED' && toLogin() }),
      }),
  )
  const [trpcClient] = useState(makeTrpcClient)
  return (
    <QueryClientProvider client={queryClient}>
      <TRPCProvider trpcClient={trpcClient} queryClient={queryClient}>
        {children}
      </TRPCProvider>
    </QueryClientProvider>
  )
}
