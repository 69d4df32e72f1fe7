import type { Duplex } from 'node:stream'

/**
 * Who may open an agent socket now. A socket is "pending" from its upgrade until the
 * server welcomed it (or it went away): pending sockets cost a hello each and prove
 * nothing yet, so there is a cap per remote address.
 */
export function createAdmission(opts: { maxPendingPerIp: number }) {
  const pendingByIp = new Map<string, number>()

  return {
    /** Takes a pending slot for `ip`, or says why not. The release is idempotent. */
    enter(ip: string): { ok: true; release(): void } | { ok: false; status: number; reason: 'pending_per_ip'; retryAfterMs: number } {
      const n = pendingByIp.get(ip) ?? 0
      if (n >= opts.maxPendingPerIp) return { ok: false, status: 429, reason: 'pending_per_ip', retryAfterMs: 1_000 }
      pendingByIp.set(ip, n + 1)
      let released = false
      return {
        ok: true,
        release() {
          if (released) return
          released = true
          const left = (pendingByIp.get(ip) ?? 1) - 1
          if (left > 0) pendingByIp.set(ip, left)
          else pendingByIp.delete(ip)
        },
      }
    },
    get pending() {
      let n = 0
      for (const v of pendingByIp.values()) n += v
      return n
    },
  }
}

/** Answers an upgrade request with an HTTP error and when to retry, then closes the socket. */
export function refuseUpgrade(socket: Duplex, status: number, retryAfterMs: number) {
  const text = status === 429 ? 'Too Many Requests' : 'Service Unavailable'
  socket.end(
    `HTTP/1.1 ${status} ${text}\r\nRetry-After: ${Math.max(1, Math.ceil(retryAfterMs / 1000))}\r\nX-Retry-After-Ms: ${Math.round(retryAfterMs)}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`,
  )
}
