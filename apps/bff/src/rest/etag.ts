import { createHash } from 'node:crypto'

/** A weak ETag of what a resource's ETag function picked from it (JSON, hashed). */
export const etagOf = (value: unknown) => `W/"${createHash('sha256').update(JSON.stringify(value)).digest('base64url').slice(0, 27)}"`

/** If-Match: "*" or a list of ETags (weak comparison, as for a lost-update check on our own weak tags). */
export function matchesEtag(header: string, etag: string): boolean {
  const h = header.trim()
  if (h === '*') return true
  const bare = (t: string) => t.trim().replace(/^W\//, '')
  return h.split(',').some((t) => bare(t) === bare(etag))
}
