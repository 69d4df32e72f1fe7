import { describe, expect, it } from 'vitest'
import { routerProcedures, type JsonSchema } from './router-schemas'

/**
 * Every value a client can send is bounded in its schema (issue 7 §2): strings have a
 * maximum length (or are uuids, enums, constants), numbers a minimum and a maximum, arrays
 * a maximum length, records a maximum number of keys with bounded key names. Walks the
 * router's own input schemas, so a new procedure cannot forget.
 */
function unbounded(s: JsonSchema, at: string): string[] {
  if (s.anyOf || s.oneOf || s.allOf) return [...(s.anyOf ?? []), ...(s.oneOf ?? []), ...(s.allOf ?? [])].flatMap((x, i) => unbounded(x, `${at}|${i}`))
  if (s.enum || s.const !== undefined) return []
  switch (s.type) {
    case 'null':
    case 'boolean':
      return []
    case 'string':
      return s.maxLength !== undefined || s.format === 'uuid' ? [] : [`${at}: string without a maximum length`]
    case 'integer':
    case 'number': {
      const out: string[] = []
      if (s.minimum === undefined && s.exclusiveMinimum === undefined) out.push(`${at}: number without a minimum`)
      if (s.maximum === undefined && s.exclusiveMaximum === undefined) out.push(`${at}: number without a maximum`)
      return out
    }
    case 'array':
      return [...(s.maxItems === undefined ? [`${at}: array without a maximum length`] : []), ...(s.items ? unbounded(s.items, `${at}[]`) : [`${at}: array of anything`])]
    case 'object': {
      const out = Object.entries(s.properties ?? {}).flatMap(([k, v]) => unbounded(v, `${at}.${k}`))
      if (typeof s.additionalProperties === 'object') {
        if (s.maxProperties === undefined) out.push(`${at}: record without a maximum number of keys`)
        out.push(...unbounded(s.propertyNames ?? {}, `${at}{key}`), ...unbounded(s.additionalProperties, `${at}{value}`))
      }
      return out
    }
    default:
      return [`${at}: a value of any type`]
  }
}

describe('API input schemas', () => {
  it('bound every string, number, array and record of every procedure', () => {
    const procs = routerProcedures()
    expect(procs.length).toBeGreaterThan(30)
    const problems = procs.flatMap((p) => (p.input ? unbounded(p.input, p.path) : []))
    expect(problems).toEqual([])
  })
})
