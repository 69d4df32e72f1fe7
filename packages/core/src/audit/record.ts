import { z } from 'zod'
import type { Actor } from '../auth/actor'
import { ZCursor } from '../schemas/bounds'

/** Which way a mutation came in. */
export type TAuditDoor = 'trpc' | 'rest' | 'agent'

/** One row of the audit trail as it is written. */
export interface NewAuditRecord {
  tenantId: string | null
  actorKind: 'user' | 'token' | 'agent' | 'anonymous'
  actorId: string | null
  actorEmail: string | null
  operator: boolean
  credential: string | null
  sourceIp: string
  userAgent: string | null
  door: TAuditDoor
  action: string
  target: string | null
  request: Record<string, unknown>
  summary: string
  result: string
  error: string | null
  requestId: string | null
}

export const ZAuditRecord = z.object({
  id: z.string(),
  at: z.date(),
  tenantId: z.string().nullable(),
  actorKind: z.string(),
  actorId: z.string().nullable(),
  actorEmail: z.string().nullable(),
  operator: z.boolean(),
  credential: z.string().nullable(),
  sourceIp: z.string(),
  userAgent: z.string().nullable(),
  door: z.string(),
  action: z.string(),
  target: z.string().nullable(),
  request: z.record(z.string(), z.unknown()),
  summary: z.string(),
  result: z.string(),
  error: z.string().nullable(),
  requestId: z.string().nullable(),
})
export type TAuditRecord = z.infer<typeof ZAuditRecord>

/** Filters of the audit trail (console page, API, export). Without tenantId: operators only, every tenant and the platform. */
export const ZAuditQuery = z.object({
  tenantId: z.string().uuid().optional(),
  /** Part of the actor's e-mail. */
  actor: z.string().trim().max(200).optional(),
  /** Prefix of the action, e.g. "apps." or "apps.scale". */
  action: z.string().trim().max(100).optional(),
  result: z.enum(['ok', 'failed']).optional(),
  /** ISO 8601 times, e.g. 2026-12-03T08:00:00Z. */
  since: z.iso.datetime({ offset: true }).max(40).optional(),
  until: z.iso.datetime({ offset: true }).max(40).optional(),
  beforeId: ZCursor.optional(),
  limit: z.number().int().min(1).max(500).default(100),
})
export type TAuditQuery = z.infer<typeof ZAuditQuery>

/** Who did it, as the trail writes it: the credential is named by its id, never its secret. */
export function auditActor(actor: Actor | null): Pick<NewAuditRecord, 'actorKind' | 'actorId' | 'actorEmail' | 'operator' | 'credential'> {
  if (!actor) return { actorKind: 'anonymous', actorId: null, actorEmail: null, operator: false, credential: null }
  return {
    actorKind: actor.kind,
    actorId: actor.userId,
    actorEmail: actor.email,
    operator: actor.operator,
    credential: actor.kind === 'token' ? `token:${actor.tokenId}` : actor.sessionId ? `session:${actor.sessionId}` : null,
  }
}

const SECRET_KEY = /password|secret|token|credential/i
const REF_KEYS: [key: string, kind: string][] = [
  ['appId', 'app'],
  ['lbId', 'lb'],
  ['networkId', 'network'],
  ['nodeId', 'node'],
  ['moveId', 'move'],
  ['instanceId', 'instance'],
  ['userId', 'user'],
]

// NUL, or a UTF-16 surrogate without its pair: PostgreSQL text and JSON hold neither.
const BAD_TEXT = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g
export const cleanText = (s: string, max: number) => (s.length > max ? `${s.slice(0, max)}…` : s).replace(BAD_TEXT, '\uFFFD')

/**
 * The request as the trail keeps it: plain JSON whatever came in (hostile input included),
 * secret-looking keys redacted, long strings cut, deep or long structures truncated, so a row
 * stays small, always writable, and never holds a credential.
 */
export function redactInput(input: unknown, depth = 0): unknown {
  if (typeof input === 'string') return cleanText(input, 500)
  if (typeof input === 'number') return Number.isFinite(input) ? input : String(input)
  if (typeof input === 'boolean' || input === null || input === undefined) return input ?? null
  if (typeof input !== 'object') return cleanText(String(input), 100) // bigint, symbol, function
  if (depth > 6) return '…'
  if (input instanceof Date) return Number.isNaN(input.getTime()) ? 'Invalid Date' : input.toISOString()
  const list = Array.isArray(input) ? input : input instanceof Set ? [...input] : input instanceof Map ? [...input.entries()] : null
  if (list) return list.slice(0, 50).map((v) => redactInput(v, depth + 1))
  return Object.fromEntries(
    Object.entries(input)
      .slice(0, 50)
      .map(([k, v]) => [cleanText(k, 100), SECRET_KEY.test(k) ? '[redacted]' : redactInput(v, depth + 1)]),
  )
}

/** The object a mutation targets, read from its input ("app/<id>"), else the tenant. */
export function auditTarget(action: string, input: unknown): string | null {
  const o = input && typeof input === 'object' ? (input as Record<string, unknown>) : {}
  const ref = (v: unknown) => (typeof v === 'string' ? cleanText(v, 100) : null)
  for (const [key, kind] of REF_KEYS) if (ref(o[key])) return `${kind}/${ref(o[key])}`
  const resource = action.split('.')[0] ?? action
  if (ref(o['id'])) return `${resource}/${ref(o['id'])}`
  if (ref(o['name'])) return `${resource}/${ref(o['name'])}`
  if (ref(o['tenantId'])) return `tenant/${ref(o['tenantId'])}`
  return null
}
