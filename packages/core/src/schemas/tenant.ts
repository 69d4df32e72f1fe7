import { z } from 'zod'
import { ZName } from './app'

export const ZMemberRole = z.enum(['owner', 'admin', 'developer', 'viewer'])
export type TMemberRole = z.infer<typeof ZMemberRole>

export const ZQuotas = z.object({
  cpuMillis: z.number().int().min(0).max(10_000_000),
  memoryMb: z.number().int().min(0).max(100_000_000),
  instances: z.number().int().min(0).max(1_000_000),
  apps: z.number().int().min(0).max(100_000),
  networks: z.number().int().min(0).max(1000),
})
export type TQuotas = z.infer<typeof ZQuotas>

export const ZCreateTenantInput = z.object({
  slug: ZName,
  name: z.string().trim().min(1, 'Required').max(80),
  quotas: ZQuotas.partial().optional(),
  /** Default placement for the tenant's apps. */
  placementStrategy: z.enum(['spread', 'binpack']).optional(),
})
export type TCreateTenantInput = z.infer<typeof ZCreateTenantInput>

// Length first: the e-mail pattern never runs on an oversized string.
export const ZEmail = z.string().max(200, 'At most 200 characters').trim().toLowerCase().email('Not an email address')
export const ZPassword = z.string().min(8, 'At least 8 characters').max(200, 'At most 200 characters')
export const ZPersonName = z.string().trim().min(1, 'Required').max(80, 'At most 80 characters')

/** Invites a person by e-mail; the same answer whether or not the e-mail has an account. */
export const ZInviteInput = z.object({ email: ZEmail, role: ZMemberRole })
export type TInviteInput = z.infer<typeof ZInviteInput>

/** The secret of an invitation link (`iv_…`). */
export const ZInvitationToken = z.string().min(1, 'Required').max(100)

/** Creates the account an invitation was sent to, through the invitation's link. */
export const ZSignUpInput = z.object({ token: ZInvitationToken, name: ZPersonName, password: ZPassword })
export type TSignUpInput = z.infer<typeof ZSignUpInput>
