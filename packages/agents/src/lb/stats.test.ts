import { describe, expect, it } from 'vitest'
import { createRateMeter } from './stats'

const L = '00000000-0000-4000-8000-000000000001'
const A = '00000000-0000-4000-8000-00000000000a'

describe('rate meter', () => {
  it('turns totals into rates per server, sums an instance behind several rules, restarts a series that went back', () => {
    let t = 0
    const meter = createRateMeter(() => t)
    expect(meter([{ lbId: L, instanceId: A, slot: 'b1/s0', current: 2, total: 100 }])).toEqual([{ lbId: L, instanceId: A, current: 2, perSecond: 0 }])
    t = 2_000
    expect(
      meter([
        { lbId: L, instanceId: A, slot: 'b1/s0', current: 1, total: 300 },
        { lbId: L, instanceId: A, slot: 'b2/s3', current: 1, total: 7 },
      ]),
    ).toEqual([{ lbId: L, instanceId: A, current: 2, perSecond: 100 }])
    t = 3_000
    // A reload restarted the counters: no negative rate.
    expect(meter([{ lbId: L, instanceId: A, slot: 'b1/s0', current: 0, total: 5 }])).toEqual([{ lbId: L, instanceId: A, current: 0, perSecond: 0 }])
  })
})
