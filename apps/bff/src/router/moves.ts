import { ZMove, ZStartMoveInput } from '@alveary/core'
import { z } from 'zod'
import { operatorProcedure, router } from '../trpc'

const ZMoveRef = z.object({ moveId: z.string().uuid() })

/** Moves of instances between nodes (the ops view): start one, follow it, undo it. */
export const movesRouter = router({
  list: operatorProcedure
    .input(z.object({ limit: z.number().int().min(1).max(200).default(50) }).default({ limit: 50 }))
    .output(z.array(ZMove))
    .query(({ ctx, input }) => ctx.core.moves.list(ctx.actor, input)),
  get: operatorProcedure.input(ZMoveRef).output(ZMove).query(({ ctx, input }) => ctx.core.moves.get(ctx.actor, input.moveId)),
  start: operatorProcedure.input(ZStartMoveInput).output(ZMove).mutation(({ ctx, input }) => ctx.core.moves.start(ctx.actor, input)),
  cancel: operatorProcedure
    .input(ZMoveRef)
    .output(z.object({ ok: z.literal(true) }))
    .mutation(async ({ ctx, input }) => {
      await ctx.core.moves.cancel(ctx.actor, input.moveId)
      return { ok: true as const }
    }),
})
