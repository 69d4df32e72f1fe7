import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createSettle, SETTLE_MS } from './isolated-settle'

describe('when removals and the pool’s refill may run', () => {
  beforeEach(() => vi.useFakeTimers())
  afterEach(() => vi.useRealTimers())

  it('waits for the latest start, longer when its change was slow, and a pass comes once they may', () => {
    const kick = vi.fn()
    const settle = createSettle(SETTLE_MS, kick)
    expect(settle.due(0)).toBe(true)
    settle.handedOut(0, 2)
    expect(settle.due(1)).toBe(false)
    // A later start puts them off from its own hand-out, not the first's.
    settle.handedOut(40, 2)
    expect(settle.due(60)).toBe(false)
    expect(settle.due(40 + SETTLE_MS)).toBe(true)
    // Its change took 30 ms (a busy node): 4 times that.
    settle.handedOut(200, 30)
    expect(settle.due(200 + SETTLE_MS)).toBe(false)
    expect(settle.due(320)).toBe(true)
    vi.runAllTimers()
    expect(kick).toHaveBeenCalled()
  })

  it('a steady stream of starts puts them off 500 ms after the first at the most; 0 never waits', () => {
    const settle = createSettle(SETTLE_MS, () => {})
    for (let t = 0; t < 500; t += 30) {
      settle.handedOut(t, 1)
      expect(settle.due(t + 1)).toBe(false)
    }
    settle.handedOut(510, 1)
    expect(settle.due(511)).toBe(true)
    const never = createSettle(0, () => {})
    never.handedOut(0, 100)
    expect(never.due(0)).toBe(true)
  })
})
