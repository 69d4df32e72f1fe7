import type { Clock } from '../clock'
import { CoreError } from '../errors'
import type { Db } from '../store/db'
import { type Actor, ROLE_RANK } from '../auth/actor'
import type { LoginThrottle } from '../auth/login-throttle'
import type { PasswordHasher } from '../auth/password-hasher'
import { hashToken, newToken } from '../auth/secrets'
import type { TMemberRole } from '../schemas/tenant'

export interface AuthDeps {
  db: Db
  clock: Clock
  sessionTtlMs: number
  hasher: PasswordHasher
  throttle: LoginThrottle
}

export function createAuthService({ db, clock, sessionTtlMs, hasher, throttle }: AuthDeps) {
  const membershipsOf = async (userId: string) =>
    new Map<string, TMemberRole>(
      (await db.membership.findMany({ where: { userId }, select: { tenantId: true, role: true } })).map((m) => [m.tenantId, m.role]),
    )

  return {
    /**
     * Password sign-in from a client address. Throttled per account and per address
     * (RATE_LIMITED with a wait), and the hashing itself is limited in concurrency.
     */
    async login(email: string, password: string, from: { address: string }): Promise<{ token: string; expiresAt: Date }> {
      const key = email.toLowerCase()
      await throttle.check(key, from.address)
      const user = await db.user.findUnique({ where: { email: key }, select: { id: true, passwordHash: true } })
      const ok = await hasher.verify(password, user?.passwordHash ?? null)
      if (!user || !ok) {
        await throttle.failed(key, from.address)
        throw new CoreError('UNAUTHORIZED', 'Wrong email or password')
      }
      await throttle.succeeded(key)
      return this.startSession(user.id)
    },

    /** A new session for a user who just proved who they are. */
    async startSession(userId: string): Promise<{ token: string; expiresAt: Date }> {
      const token = newToken('as')
      const expiresAt = new Date(clock.now().getTime() + sessionTtlMs)
      await db.session.create({ data: { tokenHash: hashToken(token), userId, expiresAt } })
      return { token, expiresAt }
    },

    async logout(token: string): Promise<void> {
      await db.session.deleteMany({ where: { tokenHash: hashToken(token) } })
    },

    /** Resolves a session cookie or an API token to an actor; null when invalid or expired. */
    async resolve(token: string): Promise<Actor | null> {
      const now = clock.now()
      if (token.startsWith('at_')) {
        const t = await db.apiToken.findUnique({
          where: { tokenHash: hashToken(token) },
          select: { id: true, userId: true, tenantId: true, role: true, expiresAt: true, lastUsedAt: true, user: { select: { email: true } } },
        })
        if (!t || (t.expiresAt && t.expiresAt <= now)) return null
        // A token is only as good as its creator's membership today.
        const member = await db.membership.findUnique({ where: { userId_tenantId: { userId: t.userId, tenantId: t.tenantId } }, select: { role: true } })
        if (!member) return null
        const role = ROLE_RANK[member.role] < ROLE_RANK[t.role] ? member.role : t.role
        if (!t.lastUsedAt || now.getTime() - t.lastUsedAt.getTime() > 60_000) await db.apiToken.update({ where: { id: t.id }, data: { lastUsedAt: now } })
        return { kind: 'token', userId: t.userId, email: t.user.email, tokenId: t.id, operator: false, memberships: new Map([[t.tenantId, role]]) }
      }
      const s = await db.session.findUnique({
        where: { tokenHash: hashToken(token) },
        select: { id: true, expiresAt: true, lastSeenAt: true, user: { select: { id: true, email: true, name: true, platformRole: true } } },
      })
      if (!s) return null
      if (s.expiresAt <= now) {
        await db.session.delete({ where: { id: s.id } }).catch(() => {})
        return null
      }
      // Sliding expiry, written at most once a minute.
      if (now.getTime() - s.lastSeenAt.getTime() > 60_000) {
        await db.session.update({ where: { id: s.id }, data: { lastSeenAt: now, expiresAt: new Date(now.getTime() + sessionTtlMs) } })
      }
      return {
        kind: 'user',
        sessionId: s.id,
        userId: s.user.id,
        email: s.user.email,
        name: s.user.name,
        operator: s.user.platformRole === 'operator',
        memberships: await membershipsOf(s.user.id),
      }
    },

    /** First run: makes sure an operator exists. Returns the password when it created one. */
    async ensureOperator(email: string, password: string): Promise<{ created: boolean }> {
      const existing = await db.user.findUnique({ where: { email }, select: { id: true } })
      if (existing) return { created: false }
      // Several BFFs may start at once: the unique e-mail decides which one creates it.
      const { count } = await db.user.createMany({
        data: [{ email, name: 'Operator', passwordHash: await hasher.hash(password), platformRole: 'operator' }],
        skipDuplicates: true,
      })
      return { created: count === 1 }
    },

    /** An operator actor for the platform's own set-up steps (the local agent's join token). */
    async operatorActor(email: string): Promise<Actor> {
      const u = await db.user.findUnique({ where: { email }, select: { id: true, email: true, name: true, platformRole: true } })
      if (!u || u.platformRole !== 'operator') throw new CoreError('NOT_FOUND', `No operator ${email}`)
      return { kind: 'user', userId: u.id, email: u.email, name: u.name, operator: true, memberships: await membershipsOf(u.id) }
    },

    async purgeExpiredSessions(): Promise<number> {
      const { count } = await db.session.deleteMany({ where: { expiresAt: { lte: clock.now() } } })
      return count
    },
  }
}
export type AuthService = ReturnType<typeof createAuthService>
