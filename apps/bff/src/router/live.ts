import { requireRole } from '@alveary/core'
import { changesOf } from '../live'
import { operatorProcedure, router, tenantProcedure } from '../trpc'

/**
 * Live updates: each yields change hints (TChange); the console invalidates the
 * matching queries. On reconnect the client refetches, so a dropped stream loses nothing.
 */
export const liveRouter = router({
  tenant: tenantProcedure.subscription(async function* ({ ctx, input, signal }) {
    requireRole(ctx.actor, input.tenantId, 'viewer')
    yield* changesOf(ctx.bus, (c) => c.kind === 'tenant' && c.tenantId === input.tenantId, signal)
  }),
  fleet: operatorProcedure.subscription(async function* ({ ctx, signal }) {
    yield* changesOf(ctx.bus, (c) => c.kind === 'fleet' || c.kind === 'tenants' || c.kind === 'move' || c.kind === 'scheduler', signal)
  }),
})
