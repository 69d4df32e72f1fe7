/**
 * The unprivileged uid (and gid) a tenant's sandboxed instances run as on every node. One per
 * tenant, from a configured range, never reused while the tenant exists: files an instance left
 * in a volume keep an owner that only that tenant's instances have.
 */
import { z } from 'zod'
import { CoreError } from '../errors'
import type { Prisma } from '../generated/prisma/client'

export const ZUidRange = z
  .object({
    /** Above every system account and the usual subordinate-id ranges of /etc/subuid (100000-165535). */
    min: z.number().int().min(1000).max(2_147_483_646).default(200_000),
    max: z.number().int().min(1000).max(2_147_483_646).default(299_999),
  })
  .refine((r) => r.max >= r.min, 'max must be at least min')
export type TUidRange = z.infer<typeof ZUidRange>

/** The lowest uid of the range no tenant has; the unique index catches a concurrent allocation (the caller retries). */
export async function allocateRunAsUid(tx: Prisma.TransactionClient, range: TUidRange): Promise<number> {
  // Usually the next after the highest; only a full tail makes it look for a gap.
  const [top] = await tx.$queryRaw<Array<{ uid: number | null }>>`
    SELECT max("runAsUid") AS uid FROM "Tenant" WHERE "runAsUid" BETWEEN ${range.min} AND ${range.max}`
  if (top?.uid == null) return range.min
  if (top.uid < range.max) return top.uid + 1
  const [gap] = await tx.$queryRaw<Array<{ uid: number }>>`
    SELECT s::int AS uid FROM generate_series(${range.min}::int, ${range.max}::int) s
    WHERE NOT EXISTS (SELECT 1 FROM "Tenant" WHERE "runAsUid" = s) LIMIT 1`
  if (!gap) throw new CoreError('CONFLICT', `No tenant uid left in ${range.min}-${range.max}: widen ALVEARY_TENANT_UID_MIN/MAX`)
  return gap.uid
}
