import { describe, expect, it } from 'vitest'
import { newlyOverSize, overSize } from './size'

const MiB = 1024 * 1024

describe('volume size', () => {
  it('is over its size only when measured above it', () => {
    expect(overSize(null, 1)).toBe(false)
    expect(overSize(MiB, 1)).toBe(false)
    expect(overSize(MiB + 1, 1)).toBe(true)
    expect(overSize(2 * MiB, 1)).toBe(true)
  })

  it('tells a volume once when it crosses its size, again only after it went back under', () => {
    const v = [{ id: 'a', sizeMb: 1 }, { id: 'b', sizeMb: 1 }]
    expect(newlyOverSize(v, new Map(), new Map([['a', 2 * MiB], ['b', MiB]]))).toEqual([v[0]])
    expect(newlyOverSize(v, new Map([['a', 2 * MiB]]), new Map([['a', 3 * MiB]]))).toEqual([])
    expect(newlyOverSize(v, new Map([['a', MiB / 2]]), new Map([['a', 2 * MiB]]))).toEqual([v[0]])
  })
})
