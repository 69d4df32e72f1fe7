import type http from 'node:http'
import type { TLSSocket } from 'node:tls'
import { parseCookie } from 'cookie'
import proxyaddr from 'proxy-addr'

export const SESSION_COOKIE = 'alveary_session'

/**
 * `ALVEARY_TRUST_PROXY`: the proxies whose X-Forwarded-For / X-Forwarded-Proto headers are
 * believed, in proxy-addr's syntax ("loopback", "10.0.0.0/8, 192.0.2.1", …) or "none". The
 * default, "loopback", is the console's own proxy on the same machine. Throws on a bad value.
 */
export function compileTrust(spec: string): (addr: string, hop: number) => boolean {
  const list = spec.trim() === 'none' ? [] : spec.split(',').map((s) => s.trim()).filter(Boolean)
  return proxyaddr.compile(list)
}

export interface ClientInfo {
  /** The client's address: the socket's, or the nearest untrusted one in X-Forwarded-For. */
  address: string
  /** The request reached us over TLS: directly, or per X-Forwarded-Proto of a trusted proxy. */
  secure: boolean
}

export function clientInfo(req: http.IncomingMessage, trust: (addr: string, hop: number) => boolean): ClientInfo {
  const peer = req.socket.remoteAddress ?? 'unknown'
  const address = req.socket.remoteAddress ? proxyaddr(req, trust) : peer
  const direct = (req.socket as TLSSocket).encrypted === true
  // Only the nearest proxy's word counts: the first value is what it saw.
  const forwardedProto = trust(peer, 0) ? String(req.headers['x-forwarded-proto'] ?? '').split(',')[0]!.trim().toLowerCase() : ''
  return { address, secure: direct || forwardedProto === 'https' }
}

/**
 * The bearer token of a request: `Authorization: Bearer …`, else the session cookie. Never
 * throws: a malformed header or cookie is simply no token (the caller gets 401).
 */
export function requestToken(req: http.IncomingMessage): string | null {
  const auth = req.headers.authorization
  if (auth !== undefined) {
    const m = /^Bearer +([\x21-\x7e]{1,512})\s*$/i.exec(auth)
    return m ? m[1]! : null
  }
  const header = req.headers.cookie
  if (!header || header.length > 8192) return null
  const value = parseCookie(header)[SESSION_COOKIE]
  return value && value.length <= 512 ? value : null
}
