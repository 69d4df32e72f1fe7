/**
 * Exit codes of `alveary`, so scripts can tell what went wrong:
 * 0 done, 1 failed (anything else), 2 usage (bad flags or file), 3 not found, 4 not allowed
 * (not logged in, 401/403), 5 conflict (409, or 412: it changed since you read it),
 * 6 invalid (422), 7 cannot reach the server (or it failed: 5xx), 8 throttled (429),
 * 9 timed out waiting (--wait).
 */
export const EXIT = { ok: 0, failed: 1, usage: 2, notFound: 3, denied: 4, conflict: 5, invalid: 6, unreachable: 7, throttled: 8, timeout: 9 } as const

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    readonly details?: unknown,
  ) {
    super(message)
  }
}

export function exitCodeForStatus(status: number): number {
  if (status === 404) return EXIT.notFound
  if (status === 401 || status === 403) return EXIT.denied
  if (status === 409 || status === 412) return EXIT.conflict
  if (status === 400 || status === 422) return EXIT.invalid
  if (status === 429) return EXIT.throttled
  if (status >= 500) return EXIT.unreachable
  return EXIT.failed
}
