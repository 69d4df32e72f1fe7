import { describe, expect, it } from 'vitest'
import { record, type Streak } from './thresholds'

const run = (start: Streak, results: boolean[], t = { successThreshold: 2, failureThreshold: 3 }) =>
  results.reduce<Streak[]>((acc, ok) => [...acc, record(acc.at(-1) ?? start, ok, t)], []).map((s) => s.healthy)

describe('record', () => {
  it('turns healthy after successThreshold successes in a row', () => {
    expect(run({ healthy: false, successes: 0, failures: 0 }, [true, false, true, true, true])).toEqual([false, false, false, true, true])
  })
  it('turns unhealthy after failureThreshold failures in a row, not before', () => {
    expect(run({ healthy: true, successes: 0, failures: 0 }, [false, false, true, false, false, false])).toEqual([true, true, true, true, true, false])
  })
})
