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

/**
 * A JSON true or false, for inputs. Not z.boolean(): the REST adapter (trpc-to-openapi) turns
 * coercion on, in place, in every input schema it serves (so query strings parse), and a
 * coerced boolean reads any non-empty string as true: `"false"` would grant trust.
 */
export const ZFlag = z.union([z.literal(true), z.literal(false)])
