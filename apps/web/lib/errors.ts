import { isTRPCError } from './trpc'

/** Field errors from a zod validation failure on the server, keyed by dotted path. */
export function serverFieldErrors(err: unknown): Record<string, string[]> {
  if (!isTRPCError(err)) return {}
  const fe = (err.data as { fieldErrors?: Record<string, string[] | undefined> | null } | undefined)?.fieldErrors
  const out: Record<string, string[]> = {}
  for (const [k, v] of Object.entries(fe ?? {})) if (v?.length) out[k] = v
  return out
}

/** A human sentence for any error the API or the network can produce. */
export function errorMessage(err: unknown): string {
  if (!err) return ''
  if (isTRPCError(err)) {
    // No tRPC error shape: the request never got an answer from the BFF (it is down, or the
    // console's proxy could not reach it and answered itself).
    if (!err.shape) {
      const status = (err.meta as { response?: { status?: number } } | undefined)?.response?.status
      return `The API did not answer${status ? ` (HTTP ${status})` : ''}. Is the BFF running?`
    }
    const fields = serverFieldErrors(err)
    if (Object.keys(fields).length) return Object.entries(fields).map(([k, v]) => `${k}: ${v.join(', ')}`).join('; ')
    const code = err.data?.code
    // zod errors without a field map carry the JSON of the issues as message
    if (code === 'BAD_REQUEST' && err.message.startsWith('[')) {
      try {
        const issues = JSON.parse(err.message) as { path?: (string | number)[]; message: string }[]
        return issues.map((i) => (i.path?.length ? `${i.path.join('.')}: ${i.message}` : i.message)).join('; ')
      } catch {
        /* plain message */
      }
    }
    return err.message
  }
  if (err instanceof Error) return err.message
  return String(err)
}
