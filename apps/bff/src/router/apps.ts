import type { TAppDetail, TAppVersion } from '@alveary/core'
import { appVersion, ZAppDetail, ZAppSummary, ZCreateAppInput, ZCursor, ZEvent, ZReplicas, ZRevision, ZRollout, ZUpdateAppInput } from '@alveary/core'
import { z } from 'zod'
import { ifMatchOf, router, tenantProcedure } from '../trpc'

/** An app's ETag is of its version: what its owner asked for, not what its instances are doing. */
const appEtag = (d: unknown) => appVersion(d as TAppDetail)

const ZAppRef = z.object({ appId: z.string().uuid() })

export const appsRouter = router({
  list: tenantProcedure
    .meta({ openapi: { method: 'GET', path: '/tenants/{tenantId}/apps', tags: ['apps'], summary: 'List apps' } })
    .output(z.array(ZAppSummary)).query(({ ctx, input }) => ctx.core.apps.list(ctx.actor, input.tenantId)),
  get: tenantProcedure
    .meta({ openapi: { method: 'GET', path: '/tenants/{tenantId}/apps/{appId}', tags: ['apps'], summary: 'An app with its instances, spec and rollout' }, rest: { etag: appEtag } })
    .input(ZAppRef).output(ZAppDetail).query(({ ctx, input }) => ctx.core.apps.get(ctx.actor, input.tenantId, input.appId)),
  create: tenantProcedure
    .meta({ openapi: { method: 'POST', path: '/tenants/{tenantId}/apps', tags: ['apps'], summary: 'Deploy an app' }, rest: { status: 201, location: 'child' } })
    .input(ZCreateAppInput)
    .output(ZAppSummary)
    .mutation(({ ctx, input: { tenantId, ...app } }) => ctx.core.apps.create(ctx.actor, tenantId, app)),
  scale: tenantProcedure
    .meta({ openapi: { method: 'POST', path: '/tenants/{tenantId}/apps/{appId}/scale', tags: ['apps'], summary: 'Scale an app (202: instances follow)' }, rest: { status: 202, location: 'parent', ifMatch: true } })
    .input(ZAppRef.extend({ replicas: ZReplicas }))
    .output(ZAppSummary)
    .mutation(({ ctx, input }) => ctx.core.apps.scale(ctx.actor, input.tenantId, input.appId, input.replicas, { precondition: ifMatchOf<TAppVersion>(ctx) })),
  update: tenantProcedure
    .meta({ openapi: { method: 'PATCH', path: '/tenants/{tenantId}/apps/{appId}', tags: ['apps'], summary: 'New revision of the spec (202: a rollout replaces the instances)' }, rest: { status: 202, location: 'self', ifMatch: true } })
    .input(ZAppRef)
    .input(ZUpdateAppInput)
    .output(ZAppSummary)
    .mutation(({ ctx, input: { tenantId, appId, ...update } }) => ctx.core.apps.update(ctx.actor, tenantId, appId, update, { precondition: ifMatchOf<TAppVersion>(ctx) })),
  rollback: tenantProcedure
    .meta({ openapi: { method: 'POST', path: '/tenants/{tenantId}/apps/{appId}/rollback', tags: ['apps'], summary: 'Roll back to an earlier revision (202)' }, rest: { status: 202, location: 'parent' } })
    .input(ZAppRef.extend({ revision: z.number().int().min(1).max(1_000_000) }))
    .output(ZAppSummary)
    .mutation(({ ctx, input }) => ctx.core.apps.rollback(ctx.actor, input.tenantId, input.appId, input.revision)),
  revisions: tenantProcedure
    .meta({ openapi: { method: 'GET', path: '/tenants/{tenantId}/apps/{appId}/revisions', tags: ['apps'], summary: 'Revision history' } })
    .input(ZAppRef).output(z.array(ZRevision)).query(({ ctx, input }) => ctx.core.apps.revisions(ctx.actor, input.tenantId, input.appId)),
  rollouts: tenantProcedure
    .meta({ openapi: { method: 'GET', path: '/tenants/{tenantId}/apps/{appId}/rollouts', tags: ['apps'], summary: 'Rollouts, newest first' } })
    .input(ZAppRef).output(z.array(ZRollout)).query(({ ctx, input }) => ctx.core.apps.rollouts(ctx.actor, input.tenantId, input.appId)),
  delete: tenantProcedure
    .meta({ openapi: { method: 'DELETE', path: '/tenants/{tenantId}/apps/{appId}', tags: ['apps'], summary: 'Delete an app (202: its instances drain and stop)' }, rest: { status: 202 } })
    .input(ZAppRef)
    .output(z.object({ ok: z.literal(true) }))
    .mutation(async ({ ctx, input }) => {
      await ctx.core.apps.delete(ctx.actor, input.tenantId, input.appId)
      return { ok: true as const }
    }),
})

export const eventsRouter = router({
  list: tenantProcedure
    .meta({ openapi: { method: 'GET', path: '/tenants/{tenantId}/events', tags: ['events'], summary: 'Events, newest first' }, rest: { cursor: 'beforeId' } })
    .input(z.object({ limit: z.number().int().min(1).max(500).default(100), beforeId: ZCursor.optional() }))
    .output(z.array(ZEvent))
    .query(({ ctx, input }) => ctx.core.events.list(ctx.actor, input.tenantId, input)),
})
