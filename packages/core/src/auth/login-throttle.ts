import type pg from 'pg'
import { RateLimiterPostgres, type RateLimiterRes } from 'rate-limiter-flexible'
import { z } from 'zod'
import type { Clock } from '../clock'
import { rateLimited } from '../errors'
import { HOT_SCHEMA } from '../store/db'

export const ZLoginThrottleConfig = z.object({
  /** Failed sign-ins allowed per account before the back-off starts. */
  accountFreeFailures: z.number().int().min(1).max(1000).default(5),
  /** Failed sign-ins allowed per client address (it may try many accounts). */
  addressFreeFailures: z.number().int().min(1).max(100_000).default(20),
  /** Failures are counted over this window; a successful sign-in clears the account's count. */
  windowSeconds: z.number().int().min(1).max(86_400 * 7).default(3_600),
  /** Back-off after the free failures: base, doubling with each failure, capped. */
  backoffBaseSeconds: z.number().int().min(1).max(3_600).default(1),
  backoffMaxSeconds: z.number().int().min(1).max(86_400).default(900),
})
export type TLoginThrottleConfig = z.infer<typeof ZLoginThrottleConfig>

/**
 * Brute-force protection for password sign-ins: after a few failures an account (and,
 * separately, a client address) must wait, the wait doubling with each further failure.
 * Counters live in the hot store through rate-limiter-flexible's PostgreSQL store, so every
 * BFF against the same database sees the same counts and a restart forgets nothing.
 * Keys are the e-mail as typed (normalised), whether or not an account has it: the answer
 * never tells whether an account exists.
 */
export function createLoginThrottle({ pool, clock, config }: { pool: pg.Pool; clock: Clock; config: TLoginThrottleConfig }) {
  const store = (keyPrefix: string, points: number, duration: number) =>
    new RateLimiterPostgres({
      storeClient: pool,
      storeType: 'pool',
      schemaName: HOT_SCHEMA,
      tableName: 'LoginThrottle',
      // The table comes from the hot store's migrations; pruning is a controller.
      tableCreated: true,
      clearExpiredByTimeout: false,
      keyPrefix,
      points,
      duration,
    })
  const failures = store('login_fail', 1_000_000, config.windowSeconds)
  const blocks = store('login_block', 1, config.backoffMaxSeconds)
  const keys = (email: string, address: string) => [
    { key: `account:${email}`, free: config.accountFreeFailures },
    { key: `address:${address}`, free: config.addressFreeFailures },
  ]
  const blockedMs = (res: RateLimiterRes | null) => (res && res.consumedPoints > 1 ? res.msBeforeNext : 0)

  return {
    /** Throws RATE_LIMITED (with the wait) while the account or the address is backing off. */
    async check(email: string, address: string): Promise<void> {
      const waits = await Promise.all(keys(email, address).map(async ({ key }) => blockedMs(await blocks.get(key))))
      const ms = Math.max(...waits)
      if (ms > 0) throw rateLimited(ms, `Too many failed sign-ins. Try again in ${Math.ceil(ms / 1000)} s.`)
    },

    async failed(email: string, address: string): Promise<void> {
      for (const { key, free } of keys(email, address)) {
        const res = await failures.penalty(key, 1)
        const over = res.consumedPoints - free
        if (over > 0) await blocks.block(key, Math.min(config.backoffMaxSeconds, config.backoffBaseSeconds * 2 ** Math.min(over - 1, 30)))
      }
    },

    /** The account's count starts afresh; the address keeps its count (one attacker, many accounts). */
    async succeeded(email: string): Promise<void> {
      await Promise.all([failures.delete(`account:${email}`), blocks.delete(`account:${email}`)])
    },

    /** Deletes expired counters. Run periodically by the leader. */
    async prune(): Promise<void> {
      await pool.query(`DELETE FROM ${HOT_SCHEMA}."LoginThrottle" WHERE expire < $1`, [clock.now().getTime()])
    },
  }
}
export type LoginThrottle = ReturnType<typeof createLoginThrottle>
