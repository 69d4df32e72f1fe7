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

export const ZEmail = z.string().trim().toLowerCase().email('Not an email address').max(200)
export const ZPassword = z.string().min(8, 'At least 8 characters').max(200)

export const ZAddMemberInput = z.object({
  email: ZEmail,
  role: ZMemberRole,
  /** Creates the user when no account has this email yet. */
  name: z.string().trim().min(1).max(80).optional(),
  password: ZPassword.optional(),
})
export type TAddMemberInput = z.infer<typeof ZAddMemberInput>
