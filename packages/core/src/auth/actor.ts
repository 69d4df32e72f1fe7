import { CoreError, forbidden } from '../errors'
import type { TMemberRole } from '../schemas/tenant'

/** Who is calling. Resolved once per request by the BFF, checked by every core service. */
export type Actor =
  | {
      kind: 'user'
      /** The session it signed in with (absent for the platform's own set-up steps). */
      sessionId?: string
      userId: string
      email: string
      name: string
      operator: boolean
      /** tenantId -> role */
      memberships: Map<string, TMemberRole>
    }
  | { kind: 'token'; userId: string; email: string; tokenId: string; operator: false; memberships: Map<string, TMemberRole> }

export const ROLE_RANK: Record<TMemberRole, number> = { viewer: 0, developer: 1, admin: 2, owner: 3 }

/**
 * The role an actor holds in a tenant. Operators read every tenant (the ops view needs
 * it) but write only where they are members.
 */
export function roleIn(actor: Actor, tenantId: string): TMemberRole | null {
  const role = actor.memberships.get(tenantId)
  if (role) return role
  return actor.operator ? 'viewer' : null
}

export function requireRole(actor: Actor, tenantId: string, min: TMemberRole): TMemberRole {
  const role = roleIn(actor, tenantId)
  // Same answer for "no such tenant" and "not yours": tenant ids must not be probeable.
  if (!role) throw new CoreError('NOT_FOUND', 'Tenant not found')
  if (ROLE_RANK[role] < ROLE_RANK[min]) throw forbidden(`This needs the ${min} role in this tenant; you are ${role}`)
  return role
}

export function requireOperator(actor: Actor): void {
  if (!actor.operator) throw forbidden('Only platform operators can do this')
}

/**
 * Credentials (API tokens, invitations, join tokens, accounts) are created only by a person
 * signed in, never by an API token: a token must not mint a way around its own scope.
 */
export function requireSignedIn(actor: Actor): asserts actor is Extract<Actor, { kind: 'user' }> {
  if (actor.kind !== 'user') throw forbidden('API tokens cannot create credentials (tokens, invitations, join tokens, accounts)')
}
