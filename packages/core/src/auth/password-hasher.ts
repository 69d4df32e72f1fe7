import pLimit from 'p-limit'
import { rateLimited } from '../errors'
import { hashPassword, verifyPassword } from './secrets'

export interface PasswordHasherConfig {
  /** Hashes computed at once. Each scrypt at N=2^17 takes ~128 MiB and a core for a few hundred ms. */
  concurrency: number
  /** Hashes allowed to wait; beyond that callers are told to come back (RATE_LIMITED). */
  maxQueued: number
  /** scrypt cost as log2 N (17 in production; tests lower it to stay fast on a busy machine). */
  cost: number
}

/**
 * Password hashing behind a concurrency limit, so a burst of sign-ins (or of wrong passwords)
 * cannot take all memory or every thread of libuv's pool, which file and DNS work share.
 */
export function createPasswordHasher({ concurrency, maxQueued, cost }: PasswordHasherConfig) {
  const limit = pLimit(concurrency)
  // Verifying against a fixed hash keeps "no such user" as slow as "wrong password".
  let dummyHash: Promise<string> | null = null
  const run = <T>(fn: () => Promise<T>): Promise<T> => {
    if (limit.pendingCount >= maxQueued) return Promise.reject(rateLimited(1000, 'The server is busy checking passwords; try again in a moment'))
    return limit(fn)
  }
  return {
    hash: (password: string) => run(() => hashPassword(password, cost)),
    /** Checks a password against a stored hash, or against a dummy one when there is no user. */
    verify: (password: string, stored: string | null) =>
      run(async () => {
        if (stored) return verifyPassword(password, stored)
        dummyHash ??= hashPassword('dummy-password', cost)
        await verifyPassword(password, await dummyHash)
        return false
      }),
  }
}
export type PasswordHasher = ReturnType<typeof createPasswordHasher>
