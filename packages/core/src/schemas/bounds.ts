import { z } from 'zod'

const BIGINT_MAX = 2n ** 63n - 1n

/**
 * A cursor over a bigint id column (events, log lines): digits, within PostgreSQL's bigint
 * range, so a hostile cursor is a 400 and never reaches the database.
 */
export const ZCursor = z
  .string()
  .max(19, 'Not a valid cursor')
  .regex(/^\d+$/, 'Not a valid cursor')
  .refine((v) => BigInt(v) <= BIGINT_MAX, 'Not a valid cursor')

/**
 * A record with at most `max` keys. The bound is also declared as `maxProperties`, so tools
 * that walk the API's schemas (the bounds test, the hostile-input test) can see it.
 */
export function boundedRecord<K extends z.core.$ZodRecordKey, V extends z.ZodType>(key: K, value: V, max: number, message: string) {
  return z
    .record(key, value)
    .refine((r) => Object.keys(r).length <= max, message)
    .meta({ maxProperties: max })
}
