import { createHash } from 'node:crypto'

// Keys sorted: a version read from the database (jsonb orders keys its own way) and the same
// version read back through an output schema hash alike.
const canonical = (v: unknown): unknown =>
  Array.isArray(v) ? v.map(canonical) : v && typeof v === 'object' && !(v instanceof Date) ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical((v as Record<string, unknown>)[k])])) : v

/** A weak ETag of a resource's version (canonical JSON, hashed). */
export const etagOf = (value: unknown) => `W/"${createHash('sha256').update(JSON.stringify(canonical(value))).digest('base64url').slice(0, 27)}"`

/** If-Match: "*" or a list of ETags (weak comparison, as for a lost-update check on our own weak tags). */
export function matchesEtag(header: string, etag: string): boolean {
  const h = header.trim()
  if (h === '*') return true
  const bare = (t: string) => t.trim().replace(/^W\//, '')
  return h.split(',').some((t) => bare(t) === bare(etag))
}
