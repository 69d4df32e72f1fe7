import type { JsonSchema } from './router-schemas'

/**
 * Input generators for the hostile-input test: a valid-looking value for any JSON Schema
 * (so hostile values reach past the fields before them), and the hostile variants of it.
 */

/** Strings tried, in order, for a field with a pattern; the first that fits is taken. */
const CANDIDATES = ['acme', 'a', 'http', 'busybox', 'someone@example.test', '1', 'a-b', 'A_1']

export function sample(s: JsonSchema, key: string, ids: Record<string, string>): unknown {
  if (s.default !== undefined && s.type !== 'object') return s.default
  if (s.anyOf ?? s.oneOf) return sample((s.anyOf ?? s.oneOf)!.find((x) => x.type !== 'null') ?? {}, key, ids)
  if (s.const !== undefined) return s.const
  if (s.enum) return s.enum[0]
  switch (s.type) {
    case 'boolean':
      return true
    case 'integer':
    case 'number':
      return Math.min(Math.max(1, s.minimum ?? 1), s.maximum ?? 1)
    case 'array':
      return s.items ? [sample(s.items, key, ids)] : []
    case 'object':
      return Object.fromEntries(Object.entries(s.properties ?? {}).map(([k, v]) => [k, sample(v, k, ids)]))
    case 'string': {
      if (s.format === 'uuid') return ids[key] ?? '00000000-0000-4000-8000-000000000000'
      if (s.format === 'email') return 'someone@example.test'
      const fits = (c: string) => (!s.pattern || new RegExp(s.pattern).test(c)) && c.length >= (s.minLength ?? 0) && c.length <= (s.maxLength ?? Infinity)
      return CANDIDATES.find(fits) ?? 'a'.repeat(Math.max(1, s.minLength ?? 1))
    }
    default:
      return null
  }
}

function deep(depth: number, leaf: unknown = 1): unknown {
  let v: unknown = leaf
  for (let i = 0; i < depth; i++) v = i % 2 ? [v] : { a: v }
  return v
}

/** Own `__proto__`/`constructor` keys, as a hostile JSON body carries them. */
const POLLUTER = JSON.parse('{"__proto__":{"polluted":"yes"},"constructor":{"prototype":{"polluted":"yes"}},"prototype":{"polluted":"yes"}}')

export const HOSTILE_VALUES: unknown[] = [
  // Wrong types and numbers at and past every limit.
  null,
  true,
  0,
  -1,
  1.5,
  2 ** 31,
  -(2 ** 31),
  1e308,
  // Strings: empty, number-ish, overlong, control and unicode tricks, injections.
  '',
  'NaN',
  '-1',
  '2147483648',
  '99999999999999999999999',
  '00000000-0000-0000-0000-000000000000',
  'a'.repeat(100_000),
  '\u0000',
  '\ud800',
  '\u202e\ufeff\u200b',
  '🐝'.repeat(300),
  'Z̤͔ͧ̑̓ä͖̭̈̇lͮ̒ͫǧ̗͚̚o̙̔ͮ̇͐̇',
  '<script>alert(1)</script>',
  `'; DROP TABLE "User"; --`,
  '../../../../etc/passwd',
  '%E0%A4%A',
  '${7*7}{{7*7}}',
  // Structures: empty, mixed, huge, polluting, deep.
  [],
  ['a', 1, null, {}],
  Array.from({ length: 5_000 }, () => 'x'),
  {},
  POLLUTER,
  deep(2_000),
]

/** superjson type annotations that turn a JSON value into something else on the server. */
export const HOSTILE_META: unknown[] = [['bigint'], ['Date'], ['set'], ['class', 'Nope'], 'URL']

type Path = (string | number)[]

export function leaves(v: unknown, at: Path = []): Path[] {
  if (Array.isArray(v)) return [at, ...v.flatMap((x, i) => leaves(x, [...at, i]))]
  if (v && typeof v === 'object') return [at, ...Object.entries(v).flatMap(([k, x]) => leaves(x, [...at, k]))]
  return [at]
}

export function setAt(v: unknown, at: Path, value: unknown): unknown {
  if (!at.length) return value
  const [head, ...rest] = at
  const copy = (Array.isArray(v) ? [...v] : { ...(v as object) }) as Record<string | number, unknown>
  copy[head!] = setAt(copy[head!], rest, value)
  return copy
}

/**
 * Hostile request bodies (superjson envelopes) for one procedure: every hostile value at
 * every position of a valid-looking input (the root included), polluting keys next to every
 * object's own keys, and superjson annotations that retype each position.
 */
export function hostileEnvelopes(base: unknown): { what: string; envelope: unknown }[] {
  const out: { what: string; envelope: unknown }[] = []
  for (const at of leaves(base)) {
    const where = at.join('.') || '(input)'
    HOSTILE_VALUES.forEach((h, i) => out.push({ what: `${where} = hostile #${i}`, envelope: { json: setAt(base, at, h) } }))
    const here = at.reduce<unknown>((v, k) => (v as Record<string | number, unknown>)[k], base)
    if (here && typeof here === 'object' && !Array.isArray(here)) out.push({ what: `${where} + polluting keys`, envelope: { json: setAt(base, at, { ...POLLUTER, ...here }) } })
    HOSTILE_META.forEach((m) => out.push({ what: `${where} as ${JSON.stringify(m)}`, envelope: { json: base, meta: { values: at.length ? { [at.join('.')]: m } : m } } }))
  }
  // The envelope itself.
  out.push({ what: 'no json key', envelope: { nope: base } })
  out.push({ what: 'meta not an object', envelope: { json: base, meta: 'x' } })
  out.push({ what: 'meta polluting', envelope: { json: base, meta: { values: { '__proto__.polluted': ['undefined'], 'constructor.prototype.polluted': ['undefined'] } } } })
  out.push({ what: 'meta self-reference', envelope: { json: base, meta: { referentialEqualities: { '': ['a'] } } } })
  return out
}
