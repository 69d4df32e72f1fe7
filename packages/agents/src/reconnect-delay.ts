/**
 * How long the agent waits before trying the server again. The server may say when (a
 * refused upgrade's X-Retry-After-Ms or Retry-After, a close reason's "(retry in N ms)"):
 * it knows how fast it welcomes agents and spreads a crowd over that rate. That number comes
 * off the network, so it is checked and bounded: never more than MAX_HINT_MS (a broken or
 * hostile server cannot park a node for hours), never less than a floor that doubles with
 * each hinted retry in a row (one that keeps answering "now" cannot make the agent spin).
 * Without a hint: exponential backoff with full jitter, capped low so a fleet is back within
 * seconds of a server restart (the server's admission absorbs the crowd and hands out times).
 */

export interface Backoff {
  baseMs: number
  capMs: number
}
export const DEFAULT_RECONNECT_BACKOFF: Backoff = { baseMs: 250, capMs: 2_000 }

/** The longest one hint can make the agent wait; it asks again after that. */
export const MAX_HINT_MS = 60_000

/** Full jitter: uniformly random in [0, min(cap, base * 2^attempt)). */
export function backoffDelay(attempt: number, b: Backoff, random: () => number = Math.random): number {
  return Math.floor(random() * Math.min(b.capMs, b.baseMs * 2 ** Math.min(attempt, 30)))
}

/** A server's retry time in ms as sent (digits only, so no "1e9", "0x10" or ""), capped; null when it is not one. */
export function parseHintMs(raw: string | number | null | undefined): number | null {
  const s = typeof raw === 'number' ? String(raw) : raw?.trim()
  if (!s || !/^\d{1,12}$/.test(s)) return null
  return Math.min(Number(s), MAX_HINT_MS)
}

/** When an HTTP refusal of the upgrade says to come back: X-Retry-After-Ms, else Retry-After in seconds (an HTTP date is ignored). */
export function retryAfterOf(headers: Record<string, string | string[] | undefined>): number | null {
  const one = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v)
  const ms = parseHintMs(one(headers['x-retry-after-ms']))
  if (ms !== null) return ms
  const s = one(headers['retry-after'])?.trim()
  return s && /^\d{1,9}$/.test(s) ? Math.min(Number(s) * 1000, MAX_HINT_MS) : null
}

/** The server's hint within bounds: at least the backoff for `inARow` hinted retries without a welcome, at most MAX_HINT_MS. */
export function boundedHint(hintMs: number, inARow: number, b: Backoff): number {
  const floor = Math.min(b.capMs, b.baseMs * 2 ** Math.min(inARow, 30))
  return Math.min(MAX_HINT_MS, Math.max(floor, Number.isFinite(hintMs) ? hintMs : MAX_HINT_MS))
}

/** A chosen delay plus a little jitter, so agents given the same time do not all come at once. */
export function hintedDelay(ms: number, random: () => number = Math.random): number {
  return Math.round(ms + random() * Math.min(500, ms / 10))
}
