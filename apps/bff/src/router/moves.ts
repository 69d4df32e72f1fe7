import { ZMove, ZStartMoveInput } from '@alveary/core'
import { z } from 'zod'
import { operatorProcedure, router } from '../trpc'

const ZMoveRef = z.object({ moveId: z.string().uuid() })

/** Moves of instances between nodes (the ops view): start one, follow it, undo it. */
export const movesRouter = router({
  list: operatorProcedure
    .meta({ openapi: { method: 'GET', path: '/moves', tags: ['moves'], summary: 'Operators: moves, newest first' } })
    .input(z.object({ limit: z.number().int().min(1).max(200).default(50) }).default({ limit: 50 }))
    .output(z.array(ZMove))
    .query(({ ctx, input }) => ctx.core.moves.list(ctx.actor, input)),
  get: operatorProcedure
    .meta({ openapi: { method: 'GET', path: '/moves/{moveId}', tags: ['moves'], summary: 'Operators: a move and its steps' } })
    .input(ZMoveRef).output(ZMove).query(({ ctx, input }) => ctx.core.moves.get(ctx.actor, input.moveId)),
  start: operatorProcedure
    .meta({ openapi: { method: 'POST', path: '/moves', tags: ['moves'], summary: 'Operators: move an instance to another node (202: follow the move at Location)' }, rest: { status: 202, location: 'child' } })
    .input(ZStartMoveInput).output(ZMove).mutation(({ ctx, input }) => ctx.core.moves.start(ctx.actor, input)),
  cancel: operatorProcedure
    .meta({ openapi: { method: 'POST', path: '/moves/{moveId}/cancel', tags: ['moves'], summary: 'Operators: cancel a move (it is undone)' }, rest: { status: 202, location: 'parent' } })
    .input(ZMoveRef)
    .output(z.object({ ok: z.literal(true) }))
    .mutation(async ({ ctx, input }) => {
      await ctx.core.moves.cancel(ctx.actor, input.moveId)
      return { ok: true as const }
    }),
})
