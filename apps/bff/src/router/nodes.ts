import { ZJoinToken, ZNode, ZNodeInstance, ZSchedulerSeries } from '@alveary/core'
import { z } from 'zod'
import { operatorProcedure, router } from '../trpc'

const ok = z.object({ ok: z.literal(true) })
const ZNodeRef = z.object({ nodeId: z.string().uuid() })

export const nodesRouter = router({
  list: operatorProcedure
    .meta({ openapi: { method: 'GET', path: '/nodes', tags: ['nodes'], summary: 'Operators: the fleet' } })
    .output(z.array(ZNode)).query(({ ctx }) => ctx.core.nodes.list(ctx.actor)),
  instances: operatorProcedure
    .meta({ openapi: { method: 'GET', path: '/nodes/{nodeId}/instances', tags: ['nodes'], summary: 'Operators: instances on a node' } })
    .input(ZNodeRef).output(z.array(ZNodeInstance)).query(({ ctx, input }) => ctx.core.nodes.instancesOn(ctx.actor, input.nodeId)),
  cordon: operatorProcedure
    .meta({ openapi: { method: 'POST', path: '/nodes/{nodeId}/cordon', tags: ['nodes'], summary: 'Operators: stop placing instances on a node' } })
    .input(ZNodeRef)
    .output(ok)
    .mutation(async ({ ctx, input }) => {
      await ctx.core.nodes.setSchedulable(ctx.actor, input.nodeId, false)
      return { ok: true as const }
    }),
  uncordon: operatorProcedure
    .meta({ openapi: { method: 'POST', path: '/nodes/{nodeId}/uncordon', tags: ['nodes'], summary: 'Operators: place instances on a node again' } })
    .input(ZNodeRef)
    .output(ok)
    .mutation(async ({ ctx, input }) => {
      await ctx.core.nodes.setSchedulable(ctx.actor, input.nodeId, true)
      return { ok: true as const }
    }),
  drain: operatorProcedure
    .meta({ openapi: { method: 'POST', path: '/nodes/{nodeId}/drain', tags: ['nodes'], summary: 'Operators: move every instance off a node (202)' }, rest: { status: 202 } })
    .input(ZNodeRef)
    .output(ok)
    .mutation(async ({ ctx, input }) => {
      await ctx.core.nodes.drain(ctx.actor, input.nodeId)
      return { ok: true as const }
    }),
  /** Scheduler queues per tenant and counters (null when this BFF is not the leader). */
  scheduler: operatorProcedure
    .meta({ openapi: { method: 'GET', path: '/scheduler', tags: ['nodes'], summary: 'Operators: scheduler queues per tenant and counters (null from a BFF that is not the leader)' } })
    .output(
      z
        .object({
          placed: z.number(),
          conflicts: z.number(),
          unschedulable: z.number(),
          errors: z.number(),
          queues: z.array(z.object({ key: z.string(), active: z.number(), backoff: z.number(), parked: z.number() })),
        })
        .nullable(),
    )
    .query(({ ctx }) => ctx.core.schedulerStats()),
  /** Placements and time-to-placement p50/p99 per tenant in 10 s buckets (any BFF: read from the database). */
  schedulerSeries: operatorProcedure
    .meta({ openapi: { method: 'GET', path: '/scheduler/series', tags: ['nodes'], summary: 'Operators: placements and time to placement per tenant, 10 s buckets' } })
    .input(z.object({ minutes: z.number().int().min(1).max(60).default(15) }))
    .output(ZSchedulerSeries)
    .query(({ ctx, input }) => ctx.core.schedulerSeries(ctx.actor, input.minutes)),
  /** Revokes the node's credential and issues a one-use token that lets an agent take the node over. */
  rekey: operatorProcedure
    .meta({ openapi: { method: 'POST', path: '/nodes/{nodeId}/rekey', tags: ['nodes'], summary: 'Operators: new credential for a node (signed-in people only)' } })
    .input(ZNodeRef.extend({ ttlHours: z.number().int().min(1).max(24 * 7).default(1) }))
    .output(z.object({ token: z.string(), joinToken: ZJoinToken }))
    .mutation(({ ctx, input }) => ctx.core.nodes.rekey(ctx.actor, input.nodeId, { ttlHours: input.ttlHours })),
  setDedicatedTenant: operatorProcedure
    .meta({ openapi: { method: 'PUT', path: '/nodes/{nodeId}/dedicated-tenant', tags: ['nodes'], summary: 'Operators: dedicate a node to a tenant (or null)' } })
    .input(ZNodeRef.extend({ tenantId: z.string().uuid().nullable() }))
    .output(ok)
    .mutation(async ({ ctx, input }) => {
      await ctx.core.nodes.setDedicatedTenant(ctx.actor, input.nodeId, input.tenantId)
      return { ok: true as const }
    }),
})

export const joinTokensRouter = router({
  list: operatorProcedure
    .meta({ openapi: { method: 'GET', path: '/join-tokens', tags: ['join-tokens'], summary: 'Operators: join tokens' } })
    .output(z.array(ZJoinToken)).query(({ ctx }) => ctx.core.nodes.listJoinTokens(ctx.actor)),
  create: operatorProcedure
    .meta({ openapi: { method: 'POST', path: '/join-tokens', tags: ['join-tokens'], summary: 'Operators: create a join token (signed-in people only)' }, rest: { status: 201 } })
    .input(
      z.object({
        description: z.string().trim().min(1, 'Required').max(200),
        ttlHours: z.number().int().min(1).max(24 * 365).default(24),
        /** How many nodes may join with it. */
        uses: z.number().int('A whole number').min(1, 'At least 1').max(100_000, 'At most 100,000').default(1),
      }),
    )
    .output(z.object({ token: z.string(), joinToken: ZJoinToken }))
    .mutation(({ ctx, input }) => ctx.core.nodes.createJoinToken(ctx.actor, input)),
  revoke: operatorProcedure
    .meta({ openapi: { method: 'DELETE', path: '/join-tokens/{id}', tags: ['join-tokens'], summary: 'Operators: revoke a join token' } })
    .input(z.object({ id: z.string().uuid() }))
    .output(ok)
    .mutation(async ({ ctx, input }) => {
      await ctx.core.nodes.revokeJoinToken(ctx.actor, input.id)
      return { ok: true as const }
    }),
})
