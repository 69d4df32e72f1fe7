import { describe, expect, it } from 'vitest'
import { PlacementStats } from './placement-stats'

describe('PlacementStats', () => {
  it('gives p50 and p99 per tenant and bucket within the histogram’s 4%, never above the largest wait', () => {
    const s = new PlacementStats(10_000)
    for (let ms = 1; ms <= 1000; ms++) s.record('big', ms, 5_000)
    s.record('small', 7, 9_999)
    s.record('small', 12, 10_000) // next bucket
    const closed = s.takeClosed(10_000)
    const big = closed.find((r) => r.tenantId === 'big')!
    expect(big.placed).toBe(1000)
    expect(big.p50Ms).toBeGreaterThanOrEqual(500)
    expect(big.p50Ms).toBeLessThanOrEqual(520)
    expect(big.p99Ms).toBeGreaterThanOrEqual(990)
    expect(big.p99Ms).toBeLessThanOrEqual(1000)
    expect(closed.find((r) => r.tenantId === 'small')).toEqual({ at: new Date(0), tenantId: 'small', placed: 1, p50Ms: 7, p99Ms: 7 })
    expect(s.takeClosed(19_999)).toEqual([])
    expect(s.takeClosed(20_000)).toEqual([{ at: new Date(10_000), tenantId: 'small', placed: 1, p50Ms: 12, p99Ms: 12 }])
  })
})
