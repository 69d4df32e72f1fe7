import { describe, expect, it } from 'vitest'
import { boundedHint, DEFAULT_RECONNECT_BACKOFF, hintedDelay, MAX_HINT_MS, parseHintMs, retryAfterOf } from '../src/reconnect-delay'

const b = DEFAULT_RECONNECT_BACKOFF

describe('the server says when to come back', () => {
  it('is read from a refused upgrade: X-Retry-After-Ms first, else Retry-After in seconds', () => {
    expect(retryAfterOf({ 'x-retry-after-ms': '2750', 'retry-after': '3' })).toBe(2750)
    expect(retryAfterOf({ 'retry-after': '3' })).toBe(3000)
    expect(retryAfterOf({ 'retry-after': ' 0 ' })).toBe(0)
    expect(retryAfterOf({})).toBeNull()
  })

  it('only as plain digits: anything else is no hint (the agent backs off on its own)', () => {
    for (const bad of ['', ' ', '-5', '1e9', '0x10', '12.5', 'NaN', 'Infinity', '5 ms', '9'.repeat(13)]) {
      expect(parseHintMs(bad)).toBeNull()
      expect(retryAfterOf({ 'x-retry-after-ms': bad, 'retry-after': bad })).toBeNull()
    }
    // An HTTP date is a valid Retry-After, but a server that wants an agent back soon says seconds.
    expect(retryAfterOf({ 'retry-after': 'Fri, 04 Dec 2026 20:00:00 GMT' })).toBeNull()
    expect(parseHintMs(null)).toBeNull()
  })

  it('never longer than MAX_HINT_MS, however large the number', () => {
    expect(parseHintMs('999999999999')).toBe(MAX_HINT_MS)
    expect(retryAfterOf({ 'retry-after': '86400' })).toBe(MAX_HINT_MS)
    expect(boundedHint(10 * 3_600_000, 0, b)).toBe(MAX_HINT_MS)
    expect(boundedHint(Number.POSITIVE_INFINITY, 0, b)).toBe(MAX_HINT_MS)
    expect(hintedDelay(MAX_HINT_MS, () => 0.999)).toBeLessThanOrEqual(MAX_HINT_MS + 500)
  })

  it('never so soon that a server answering "now" again and again makes the agent spin: the floor doubles per hinted retry, up to the backoff cap', () => {
    const floors = Array.from({ length: 8 }, (_, n) => boundedHint(0, n, b))
    expect(floors).toEqual([250, 500, 1000, 2000, 2000, 2000, 2000, 2000])
    // What an honest server asks for is kept as it is.
    expect(boundedHint(4_321, 0, b)).toBe(4_321)
    expect(boundedHint(4_321, 5, b)).toBe(4_321)
  })

  it('is followed with a little jitter: at most a tenth, at most half a second', () => {
    expect(hintedDelay(1_000, () => 0)).toBe(1_000)
    expect(hintedDelay(1_000, () => 0.999)).toBe(1_100)
    expect(hintedDelay(20_000, () => 0.999)).toBe(20_500)
  })
})
