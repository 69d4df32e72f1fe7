import { describe, expect, it } from 'vitest'
import { createManualClock } from '../clock'
import { type QueueItem, SchedulingQueue } from './queue'

const clock = (t0 = 0) => createManualClock(new Date(t0))
let seq = 0
const item = (id: string, priority = 100): QueueItem => ({ instanceId: id, tenantId: 't', priority, attempts: 0, conflicts: 0, enqueuedAt: 0, seq: seq++ })

describe('SchedulingQueue', () => {
  it('pops by priority, then arrival; ignores duplicates', () => {
    const q = new SchedulingQueue(clock(), { baseMs: 100, maxMs: 1000 })
    q.add(item('low', 0))
    q.add(item('a'))
    q.add(item('b'))
    q.add(item('urgent', 1000))
    expect(q.add(item('a'))).toBe(false)
    expect(q.take(10).map((i) => i.instanceId)).toEqual(['urgent', 'a', 'b', 'low'])
  })

  it('backs off doubling up to the cap, by the injected clock', () => {
    const c = clock()
    const q = new SchedulingQueue(c, { baseMs: 100, maxMs: 300 })
    q.add(item('x'))
    const [x] = q.take(1)
    q.backOff(x!)
    expect(q.take(1)).toEqual([])
    expect(q.nextDueIn()).toBe(100)
    void c.advance(100)
    const [again] = q.take(1)
    expect(again?.instanceId).toBe('x')
    q.backOff(again!)
    expect(q.nextDueIn()).toBe(200)
    void c.advance(200)
    q.backOff(q.take(1)[0]!)
    expect(q.nextDueIn()).toBe(300) // capped
  })

  it('parks unschedulable items until something changes', () => {
    const q = new SchedulingQueue(clock(), { baseMs: 100, maxMs: 1000 })
    q.add(item('p'))
    q.park(q.take(1)[0]!)
    expect(q.take(1)).toEqual([])
    expect(q.parkedCount).toBe(1)
    expect(q.add(item('p'))).toBe(false) // still known while parked
    expect(q.unparkAll()).toBe(1)
    expect(q.take(1)[0]?.instanceId).toBe('p')
  })

  it('removes an item wherever it waits', () => {
    const q = new SchedulingQueue(clock(), { baseMs: 100, maxMs: 1000 })
    q.add(item('a'))
    q.add(item('b'))
    q.remove('a')
    expect(q.take(5).map((i) => i.instanceId)).toEqual(['b'])
    expect(q.has('a')).toBe(false)
  })
})
