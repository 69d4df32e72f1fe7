/** Domain errors. Core never imports tRPC; the BFF maps codes to transport errors. */
export type CoreErrorCode = 'UNAUTHORIZED' | 'FORBIDDEN' | 'NOT_FOUND' | 'BAD_REQUEST' | 'CONFLICT' | 'QUOTA_EXCEEDED'

export class CoreError extends Error {
  constructor(
    readonly code: CoreErrorCode,
    message: string,
  ) {
    super(message)
    this.name = 'CoreError'
  }
}

export const notFound = (what: string) => new CoreError('NOT_FOUND', `${what} not found`)
export const forbidden = (why = 'You do not have access to this') => new CoreError('FORBIDDEN', why)
