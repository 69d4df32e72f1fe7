import type { Prisma } from '../generated/hot/client'
import type { NewEvent } from '../store/hot-store'
import type { Actor } from './actor'

/**
 * An audit event for what an actor did. It names the actor and says when the actor was an
 * API token or a platform operator, so every operator action inside a tenant stands out.
 */
export function auditEvent(
  actor: Actor,
  e: { tenantId?: string | null; type: string; subject: string; message: string; data?: Record<string, Prisma.InputJsonValue> },
): NewEvent {
  const outsider = actor.operator && !!e.tenantId && !actor.memberships.has(e.tenantId)
  return {
    tenantId: e.tenantId ?? null,
    kind: 'audit',
    type: e.type,
    actorId: actor.userId,
    subject: e.subject,
    message: outsider ? `Operator ${actor.email}: ${e.message}` : e.message,
    data: {
      ...e.data,
      actor: { email: actor.email, ...(actor.kind === 'token' && { tokenId: actor.tokenId }), ...(actor.operator && { operator: true }) },
    },
  }
}
