import path from 'node:path'
import { z } from 'zod'
import { compileTrust } from './http/client'

const port = z.coerce.number().int().min(0).max(65535)
const ms = z.coerce.number().int().positive()

/** Every setting of the BFF, from the environment. Invalid values stop start-up with a clear message. */
export const ZBffEnv = z.object({
  DATABASE_URL: z.string().url().optional(),
  /** Hot store (heartbeats, instance status, events) on its own server; default: DATABASE_URL. */
  DATABASE_URL_HOT: z.string().url().optional(),
  BFF_PORT: port.default(4000),
  BFF_HOST: z.string().default('0.0.0.0'),
  ALVEARY_DATA_DIR: z.string().default('.data'),
  ALVEARY_EMBEDDED_PG_PORT: port.default(5499),
  ALVEARY_OPERATOR_EMAIL: z.string().email().default('operator@alveary.local'),
  ALVEARY_OPERATOR_PASSWORD: z.string().min(8).optional(),
  ALVEARY_HEARTBEAT_MS: ms.default(5_000),
  ALVEARY_STATUS_FLUSH_MS: z.coerce.number().int().min(0).max(600_000).default(50),
  ALVEARY_NODE_LEASE_MS: ms.default(20_000),
  /** An agent socket that sends no hello by then is closed. */
  ALVEARY_AGENT_HELLO_TIMEOUT_MS: ms.default(5_000),
  /** Agent sockets not yet welcomed, per remote address (raise it behind a proxy or NAT). */
  ALVEARY_AGENT_MAX_PENDING_PER_IP: z.coerce.number().int().min(1).max(100_000).default(64),
  /** Agents welcomed at once (hello checked, desired state read and sent; core reads and claims them in batches), and how many more may wait; the rest are told when to retry. */
  ALVEARY_AGENT_MAX_CONCURRENT_HELLOS: z.coerce.number().int().min(1).max(100_000).default(500),
  ALVEARY_AGENT_HELLO_QUEUE: z.coerce.number().int().min(0).max(100_000).default(5_000),
  /** Host ports handed to instances on every node. */
  ALVEARY_HOST_PORT_MIN: z.coerce.number().int().min(1024).max(65535).default(20_000),
  ALVEARY_HOST_PORT_MAX: z.coerce.number().int().min(1024).max(65535).default(29_999),
  ALVEARY_LB_PORT_MIN: z.coerce.number().int().min(1024).max(65535).default(30_000),
  ALVEARY_LB_PORT_MAX: z.coerce.number().int().min(1024).max(65535).default(32_767),
  /** Tenant networks: the pool default networks' CIDRs come from, and their prefix length. */
  ALVEARY_NETWORK_POOL: z.string().default('100.64.0.0/10'),
  ALVEARY_NETWORK_PREFIX_LENGTH: z.coerce.number().int().min(16).max(29).default(24),
  /** The unprivileged uids (= gids) tenants' sandboxed instances run as: one per tenant, for good. */
  ALVEARY_TENANT_UID_MIN: z.coerce.number().int().min(1000).max(2_147_483_646).default(200_000),
  ALVEARY_TENANT_UID_MAX: z.coerce.number().int().min(1000).max(2_147_483_646).default(299_999),
  /** The first tenant created is trusted: `npm start` works where the node cannot sandbox (with a warning). */
  ALVEARY_TRUST_FIRST_TENANT: z.enum(['0', '1', 'false', 'true']).default('0').transform((v) => v === '1' || v === 'true'),
  ALVEARY_EVICTION_GRACE_MS: z.coerce.number().int().min(0).default(30_000),
  /** Nodes stop instances with volumes (and opted-in ones) after this long without renewing their lease. */
  ALVEARY_SELF_FENCE_MS: z.coerce.number().int().min(1000).max(3_600_000).default(30_000),
  /** How much longer the control plane waits before it starts such an instance elsewhere. */
  ALVEARY_FENCE_MARGIN_MS: z.coerce.number().int().min(0).max(600_000).default(5_000),
  /** After a control-plane (re)start, nodes not heard from yet get this long before NotReady. */
  ALVEARY_NODE_STARTUP_GRACE_MS: z.coerce.number().int().min(0).default(60_000),
  ALVEARY_SCHEDULER_MODE: z.enum(['parallel', 'serial']).default('parallel'),
  ALVEARY_STOPPED_RETENTION_MS: z.coerce.number().int().min(0).default(60_000),
  /** Audit rows older than this many days are removed by an hourly housekeeping job (default two years). */
  ALVEARY_AUDIT_RETENTION_DAYS: z.coerce.number().int().min(1).max(36_500).default(730),
  ALVEARY_MIGRATIONS_DIR: z.string().optional(),
  /** Proxies whose X-Forwarded-For/-Proto are believed: proxy-addr syntax, or "none". */
  ALVEARY_TRUST_PROXY: z
    .string()
    .default('loopback')
    .refine((v) => {
      try {
        compileTrust(v)
        return true
      } catch {
        return false
      }
    }, 'a comma-separated list of addresses, CIDR ranges, "loopback", "linklocal", "uniquelocal", or "none"'),
  /** Failed sign-ins before the back-off starts: per account, per client address. */
  ALVEARY_LOGIN_ACCOUNT_FAILURES: z.coerce.number().int().min(1).max(1000).default(5),
  ALVEARY_LOGIN_ADDRESS_FAILURES: z.coerce.number().int().min(1).max(100_000).default(20),
  /** The back-off after those: the first wait, doubling with each further failure, up to the maximum. */
  ALVEARY_LOGIN_BACKOFF_BASE_SECONDS: z.coerce.number().int().min(1).max(3_600).default(1),
  ALVEARY_LOGIN_BACKOFF_MAX_SECONDS: z.coerce.number().int().min(1).max(86_400).default(900),
  /** Password hashes (scrypt, ~128 MiB each) computed at once, and allowed to wait. */
  ALVEARY_PASSWORD_HASH_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(2),
  ALVEARY_PASSWORD_HASH_QUEUE: z.coerce.number().int().min(0).max(10_000).default(16),
  /** scrypt cost of new password hashes as log2 N: 17 (OWASP) by default; the tests use 14 to stay fast on busy machines. */
  ALVEARY_PASSWORD_HASH_COST: z.coerce.number().int().min(12).max(20).default(17),
  /** Session cookies marked Secure: "auto" when the request came over HTTPS (directly or through a trusted proxy). */
  ALVEARY_SECURE_COOKIES: z.enum(['auto', 'always', 'never']).default('auto'),
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'silent']).default('info'),
})
export type TBffEnv = z.infer<typeof ZBffEnv>

export function readEnv(env: NodeJS.ProcessEnv = process.env): TBffEnv {
  const res = ZBffEnv.safeParse(env)
  if (!res.success) {
    const lines = res.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`)
    throw new Error(`invalid configuration:\n${lines.join('\n')}`)
  }
  return res.data
}

export const repoRoot = path.resolve(import.meta.dirname, '../../..')
export const defaultMigrationsDir = path.join(repoRoot, 'prisma/migrations')
