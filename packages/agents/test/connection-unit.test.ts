import { describe, expect, it } from 'vitest'
import { withoutNul } from '../src/connection'

describe('frames on the wire', () => {
  it('replace NUL characters (the server refuses them) and nothing else', () => {
    const roundTrip = (s: string) => (JSON.parse(withoutNul(JSON.stringify({ s }))) as { s: string }).s
    expect(roundTrip('a\u0000b\u0000\u0000')).toBe('a\ufffdb\ufffd\ufffd')
    // A literal backslash followed by "u0000" is text, not a NUL.
    expect(roundTrip('a\\u0000b')).toBe('a\\u0000b')
    expect(roundTrip('x\\\u0000')).toBe('x\\\ufffd')
    expect(roundTrip('plain')).toBe('plain')
  })
})
