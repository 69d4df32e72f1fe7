/**
 * IP address management, pure: CIDR arithmetic, address choice, MACs and VXLAN ids. The
 * service (services/networks.ts) reads the used set from the lease table and writes the
 * choice back under a row lock; nothing here does I/O, so every rule is unit-tested.
 */
import { VXLAN_ID_MAX, VXLAN_ID_MIN } from '../protocol/network'

export interface Cidr {
  /** Network address as an unsigned 32-bit integer. */
  base: number
  prefix: number
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/

export function parseIp(s: string): number | null {
  const m = IPV4.exec(s)
  if (!m) return null
  let n = 0
  for (let i = 1; i <= 4; i++) {
    const o = Number(m[i])
    if (o > 255 || (m[i]!.length > 1 && m[i]!.startsWith('0'))) return null
    n = n * 256 + o
  }
  return n
}

export function formatIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.')
}

const maskOf = (prefix: number) => (prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0)

/** "100.64.0.0/24" → { base, prefix }; null when malformed or when host bits are set. */
export function parseCidr(s: string): Cidr | null {
  const [ip, len, ...rest] = s.split('/')
  if (rest.length || ip === undefined || len === undefined || !/^\d{1,2}$/.test(len)) return null
  const base = parseIp(ip)
  const prefix = Number(len)
  if (base === null || prefix > 32) return null
  if ((base & ~maskOf(prefix)) >>> 0 !== 0) return null
  return { base, prefix }
}

export const formatCidr = (c: Cidr) => `${formatIp(c.base)}/${c.prefix}`
export const sizeOf = (c: Cidr) => 2 ** (32 - c.prefix)
export const contains = (c: Cidr, ip: number) => ((ip & maskOf(c.prefix)) >>> 0) === c.base
export const overlaps = (a: Cidr, b: Cidr) => contains(a, b.base) || contains(b, a.base)
/** True when `inner` lies entirely within `outer`. */
export const within = (inner: Cidr, outer: Cidr) => inner.prefix >= outer.prefix && contains(outer, inner.base)

/** The distributed gateway: the first host address, present on every node's bridge of the network. */
export const gatewayOf = (c: Cidr) => c.base + 1

/** Addresses instances may get: all hosts except the gateway (network and broadcast excluded). */
export const assignableCount = (c: Cidr) => Math.max(0, sizeOf(c) - 3)

/**
 * The lowest free instance address, or null when the network is full. Lowest-first keeps
 * addresses dense and predictable (the first replica of a fresh network gets .2).
 */
export function allocateIp(c: Cidr, used: ReadonlySet<number>): number | null {
  const first = gatewayOf(c) + 1
  const last = c.base + sizeOf(c) - 2
  for (let ip = first; ip <= last; ip++) if (!used.has(ip)) return ip
  return null
}

/**
 * Instance MAC from its IP (locally administered, unicast: 02:a1:<ip>). An instance keeps
 * its IP when it moves, so peers' ARP caches stay right; only the overlay's forwarding
 * entry (MAC → node) changes.
 */
export function macOf(ip: number): string {
  const hex = [(ip >>> 24) & 255, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255].map((o) => o.toString(16).padStart(2, '0'))
  return `02:a1:${hex.join(':')}`
}

/** The gateway's MAC, the same on every node (02:a0:<vxlan id, 3 bytes>:01). */
export function gatewayMacOf(vxlanId: number): string {
  const hex = [(vxlanId >>> 16) & 255, (vxlanId >>> 8) & 255, vxlanId & 255].map((o) => o.toString(16).padStart(2, '0'))
  return `02:a0:${hex.join(':')}:01`
}

export { VXLAN_ID_MAX, VXLAN_ID_MIN }

/** The lowest VXLAN id not in `used`, or null when all are taken. */
export function allocateVxlanId(used: ReadonlySet<number>): number | null {
  for (let id = VXLAN_ID_MIN; id <= VXLAN_ID_MAX; id++) if (!used.has(id)) return id
  return null
}

/**
 * A default network's CIDR: the first block of `prefix` bits in the pool that no other
 * default network uses. When the pool is exhausted tenants share blocks (their networks are
 * separate L2 domains, so overlap is allowed; distinct blocks only make debugging easier).
 */
export function nextDefaultCidr(pool: Cidr, prefix: number, used: readonly Cidr[]): Cidr {
  if (prefix < pool.prefix) throw new Error(`default networks (/${prefix}) cannot be larger than the pool (/${pool.prefix})`)
  const step = 2 ** (32 - prefix)
  const count = 2 ** (prefix - pool.prefix)
  const taken = new Set(used.filter((u) => within(u, pool) && u.prefix === prefix).map((u) => u.base))
  for (let k = 0; k < count; k++) {
    const base = pool.base + k * step
    if (!taken.has(base) && !used.some((u) => overlaps(u, { base, prefix }))) return { base, prefix }
  }
  // Everything taken: wrap around, overlapping (allowed across tenants).
  return { base: pool.base + (used.length % count) * step, prefix }
}

/** Private ranges a tenant network may use: RFC 1918 and the shared address space (RFC 6598). */
export const PRIVATE_RANGES: readonly Cidr[] = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10'].map((s) => parseCidr(s)!)

/** Why a CIDR cannot be a tenant network, or null when it can. */
export function cidrProblem(s: string): string | null {
  const c = parseCidr(s)
  if (!c) return 'not a CIDR such as 100.64.8.0/24 (host bits must be zero)'
  if (c.prefix < 16 || c.prefix > 29) return 'the prefix length must be between /16 and /29'
  if (!PRIVATE_RANGES.some((r) => within(c, r))) return 'must lie in 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16 or 100.64.0.0/10'
  return null
}
