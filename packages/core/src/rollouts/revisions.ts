/** Revisions: the stored versions of an app's spec, compared by their instance template. */
import { createHash } from 'node:crypto'
import { templateOf, type TAppSpec } from '../schemas/app'

/** JSON with object keys sorted at every level, so equal values always serialize equally. */
function stable(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null'
  if (Array.isArray(value)) return `[${value.map(stable).join(',')}]`
  const obj = value as Record<string, unknown>
  return `{${Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${stable(obj[k])}`)
    .join(',')}}`
}

/** Instances of revisions with the same hash run the same thing and are interchangeable. */
export const templateHash = (spec: TAppSpec): string => createHash('sha256').update(stable(templateOf(spec))).digest('hex').slice(0, 32)

export interface SpecChange {
  /** Dotted path: "image", "env.LOG_LEVEL", "ports.0.readiness.path". */
  field: string
  from: string | null
  to: string | null
}

/** What changed between two specs, leaf by leaf (for the revision history). */
export function diffSpecs(before: unknown, after: unknown, prefix = ''): SpecChange[] {
  const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object'
  if (isObj(before) && isObj(after) && Array.isArray(before) === Array.isArray(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort()
    return keys.flatMap((k) => diffSpecs(before[k], after[k], prefix ? `${prefix}.${k}` : k))
  }
  const show = (v: unknown) => (v === undefined || v === null ? null : typeof v === 'string' ? v : stable(v))
  const [from, to] = [show(before), show(after)]
  return from === to ? [] : [{ field: prefix, from, to }]
}
