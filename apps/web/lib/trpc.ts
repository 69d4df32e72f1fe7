'use client'
import type { AppRouter } from '@alveary/bff/router'
import { createTRPCClient, httpBatchLink, httpSubscriptionLink, splitLink, TRPCClientError } from '@trpc/client'
import type { inferRouterOutputs } from '@trpc/server'
import { createTRPCContext } from '@trpc/tanstack-react-query'
import superjson from 'superjson'

export type { AppRouter }
export type RouterOutputs = inferRouterOutputs<AppRouter>
export type TApp = RouterOutputs['apps']['list'][number]
export type TAppDetail = RouterOutputs['apps']['get']
export type TInstance = TAppDetail['instances'][number]
export type TNode = RouterOutputs['nodes']['list'][number]
export type TNodeInstance = RouterOutputs['nodes']['instances'][number]
export type TSchedulerStats = NonNullable<RouterOutputs['nodes']['scheduler']>
export type TTenant = RouterOutputs['tenants']['list'][number]
export type TMember = RouterOutputs['members']['list'][number]
export type TInvitation = RouterOutputs['invitations']['list'][number]
export type TReceivedInvitation = RouterOutputs['invitations']['received'][number]
export type TRevision = RouterOutputs['apps']['revisions'][number]
export type TRollout = NonNullable<TAppDetail['rollout']>
export type TLoadBalancer = RouterOutputs['loadBalancers']['list'][number]
export type TEvent = RouterOutputs['events']['list'][number]
export type TMe = RouterOutputs['auth']['me']
export type TRole = TMember['role']
export type TMove = RouterOutputs['moves']['list'][number]
export type TMoveStep = TMove['steps'][number]

export const { TRPCProvider, useTRPC, useTRPCClient } = createTRPCContext<AppRouter>()

/** Same-origin: the console forwards /trpc/* to the BFF (see proxy.ts). */
export function makeTrpcClient() {
  const url = '/trpc'
  return createTRPCClient<AppRouter>({
    links: [
      splitLink({
        condition: (op) => op.type === 'subscription',
        true: httpSubscriptionLink({ url, transformer: superjson }),
        // Below the API's batch cap (32 calls); long GET batches are split, not rejected.
        false: httpBatchLink({ url, transformer: superjson, maxItems: 16, maxURLLength: 4_000 }),
      }),
    ],
  })
}

export function isTRPCError(err: unknown): err is TRPCClientError<AppRouter> {
  return err instanceof TRPCClientError
}

export function errorCode(err: unknown): string | null {
  return isTRPCError(err) ? (err.data?.code ?? null) : null
}
