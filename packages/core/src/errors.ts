/** Domain errors. Core never imports tRPC; the BFF maps codes to transport errors. */
export type CoreErrorCode = 'UNAUTHORIZED' | 'FORBIDDEN' | 'NOT_FOUND' | 'BAD_REQUEST' | 'CONFLICT' | 'QUOTA_EXCEEDED' | 'RATE_LIMITED'
  /** A conditional write found a newer version than the caller read (REST: If-Match, 412). */
  | 'PRECONDITION_FAILED'

export class CoreError extends Error {
  constructor(
    readonly code: CoreErrorCode,
    message: string,
    /** RATE_LIMITED: when to come back (the BFF sends it as Retry-After). */
    readonly retryAfterSeconds?: number,
  ) {
    super(message)
    this.name = 'CoreError'
  }
}

export const notFound = (what: string) => new CoreError('NOT_FOUND', `${what} not found`)
export const forbidden = (why = 'You do not have access to this') => new CoreError('FORBIDDEN', why)
export const rateLimited = (ms: number, why: string) => new CoreError('RATE_LIMITED', why, Math.max(1, Math.ceil(ms / 1000)))
