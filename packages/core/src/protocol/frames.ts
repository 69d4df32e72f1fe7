/** Framing of the agent protocol: version, size limit, close codes, parsing. */
import type { z } from 'zod'

/** 3: desired instances carry the tenant's sandbox uid/gid (runAs). */
export const PROTOCOL_VERSION = 3
/** Frames above this size close the connection (ws maxPayload). */
export const MAX_FRAME_BYTES = 1024 * 1024

/** Close codes sent with a reason. */
export const CloseCode = {
  /** A frame broke the protocol (not JSON, schema violation, refused by the store). */
  badFrame: 4400,
  unauthorized: 4401,
  /** A join named a node that already exists: joins never take a node over (the operator re-keys it). */
  nameTaken: 4403,
  /** No hello within the server's hello timeout. */
  helloTimeout: 4408,
  /** The node already has a live connection: a second agent with the same identity? */
  duplicate: 4409,
  /** A newer connection of the same agent (same runId) or one after this one went silent took over. */
  replaced: 4410,
  versionMismatch: 4426,
  /** The peer sent faster than the server can handle, past the per-connection bound. */
  overrun: 4429,
} as const

/**
 * A refusal can say when to try again: the close reason ends with "(retry in N ms)", and
 * HTTP refusals of the upgrade carry X-Retry-After-Ms (and Retry-After in seconds).
 */
export const withRetryHint = (reason: string, ms: number) => `${reason.slice(0, 96)} (retry in ${Math.max(0, Math.round(ms))} ms)`
export function retryHintOf(reason: string): number | null {
  const m = /\(retry in (\d{1,9}) ms\)$/.exec(reason)
  return m ? Number(m[1]) : null
}

/** Parses one frame; returns a reason instead of throwing so a bad peer never crashes us. */
export function parseFrame<T>(schema: z.ZodType<T>, raw: string): { ok: true; value: T } | { ok: false; reason: string } {
  let json: unknown
  try {
    json = JSON.parse(raw)
  } catch {
    return { ok: false, reason: 'frame is not JSON' }
  }
  const res = schema.safeParse(json)
  if (!res.success) {
    const issue = res.error.issues[0]
    return { ok: false, reason: `invalid frame: ${issue ? `${issue.path.join('.') || '(root)'}: ${issue.message}` : 'unknown'}` }
  }
  return { ok: true, value: res.data }
}
