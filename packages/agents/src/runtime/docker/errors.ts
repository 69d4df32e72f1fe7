/** Reading the engine's errors. */
interface DockerError {
  statusCode?: number
  json?: { message?: string } | null
  reason?: string
  message?: string
}
export const statusOf = (err: unknown) => (err as DockerError | null)?.statusCode

/** The daemon's own message where there is one ("(HTTP code 404) no such image - " noise removed). */
export function daemonMessage(err: unknown): string {
  const e = err as DockerError | null
  const m = e?.json && typeof e.json === 'object' && typeof e.json.message === 'string' ? e.json.message : (e?.message ?? String(err))
  return m.replace(/^\(HTTP code \d+\)\s*[^-]*-\s*/, '').trim()
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref?.())
