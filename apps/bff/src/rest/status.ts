import { CoreError } from '@alveary/core'
import type { TRPCError } from '@trpc/server'
import { ZodError } from 'zod'

/**
 * The HTTP status of a REST error, where it differs from tRPC's: input that fails its schema
 * or a core rule is 422 (field errors in `data.fieldErrors`), a quota 409 (412 is kept for
 * If-Match). Malformed JSON stays 400. Everything else keeps tRPC's mapping (404, 409, 429…).
 */
export function restErrorStatus(error: TRPCError): number | undefined {
  const cause = error.cause
  if (cause instanceof CoreError) {
    if (cause.code === 'QUOTA_EXCEEDED') return 409
    if (cause.code === 'BAD_REQUEST') return 422
    return undefined
  }
  if (error.code === 'BAD_REQUEST' && (cause instanceof ZodError || cause?.name === 'ZodError' || !cause)) return 422
  return undefined
}

export const retryAfterOf = (error: TRPCError) => (error.cause instanceof CoreError ? (error.cause.retryAfterSeconds ?? 0) : 0)
