/** Equal as the API means it: a field left out and a field set to null say the same; key order does not count. */
export const same = (a: unknown, b: unknown): boolean => JSON.stringify(canonical(a)) === JSON.stringify(canonical(b))

function canonical(v: unknown): unknown {
  if (v === undefined) return null
  if (Array.isArray(v)) return v.map(canonical)
  if (v && typeof v === 'object')
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, canonical((v as Record<string, unknown>)[k])])
        .filter(([, x]) => x !== null),
    )
  return v
}

export const show = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v))
