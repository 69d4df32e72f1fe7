import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto'
import { promisify } from 'node:util'

const scryptAsync = promisify(scrypt) as (pw: string, salt: Buffer, len: number, opts: { N: number; r: number; p: number }) => Promise<Buffer>
/** OWASP's scrypt recommendation is N=2^17 (r=8, p=1): the default cost, as log2 N. */
export const DEFAULT_HASH_COST = 17

/** Hashes are stored with their parameters, so the cost can change and old hashes still verify. */
export async function hashPassword(password: string, cost = DEFAULT_HASH_COST): Promise<string> {
  const salt = randomBytes(16)
  const params = { N: 2 ** cost, r: 8, p: 1, maxmem: 256 * 1024 * 1024 }
  const key = await scryptAsync(password, salt, 32, params)
  return `scrypt$${params.N}$${params.r}$${params.p}$${salt.toString('base64')}$${key.toString('base64')}`
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [alg, n, r, p, salt, key] = stored.split('$')
  if (alg !== 'scrypt' || !n || !r || !p || !salt || !key) return false
  const expected = Buffer.from(key, 'base64')
  const actual = await scryptAsync(password, Buffer.from(salt, 'base64'), expected.length, {
    N: Number(n),
    r: Number(r),
    p: Number(p),
    maxmem: 256 * 1024 * 1024,
  } as never)
  return actual.length === expected.length && timingSafeEqual(actual, expected)
}

/** Random bearer secrets (session cookies, API tokens, join tokens, node credentials). */
export function newToken(prefix: string): string {
  return `${prefix}_${randomBytes(24).toString('base64url')}`
}

/** A new bearer secret with what is stored of it: the shown prefix and the hash. */
export function mintToken(kind: string): { token: string; prefix: string; tokenHash: string } {
  const token = newToken(kind)
  return { token, prefix: token.slice(0, 7), tokenHash: hashToken(token) }
}

/** Tokens are high-entropy, so a plain SHA-256 is enough to store them safely. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex')
}

export function randomPassword(): string {
  return randomBytes(12).toString('base64url')
}
