import { CoreError, createBatchLoader } from '@alveary/core'
import type { TDesired } from '@alveary/core/protocol'
import { describe, expect, it } from 'vitest'
import { createHelloGate, retrySlot } from '../src/gateway/admission'

const tick = () => new Promise((r) => setImmediate(r))

describe('hello gate', () => {
  it('welcomes `concurrency` at a time in arrival order, queues `queue` more and refuses the rest with a time to come back', async () => {
    let t = 0
    const gate = createHelloGate({ concurrency: 2, queue: 2, now: () => t })
    const tickets = [0, 1, 2, 3].map(() => {
      const g = gate.enter()
      if (!g.ok) throw new Error('refused too early')
      return g.ticket
    })
    const refused = gate.enter()
    expect(refused.ok).toBe(false)
    // No welcome measured yet: the guess (50 ms per welcome, 2 at once) for half of 4 ahead is 50 ms, at least 250 ms.
    if (!refused.ok) expect(refused.retryAfterMs).toBe(250)

    const order: number[] = []
    tickets.forEach((tk, i) => void tk.turn().then(() => order.push(i)))
    await tick()
    expect(order).toEqual([0, 1])
    // One leaves while waiting: its wait ends (its connection is gone), it takes no slot, 3 still waits.
    tickets[2]!.release()
    await tick()
    expect(order).toEqual([0, 1, 2])
    t = 100
    tickets[0]!.release()
    await tick()
    expect(order).toEqual([0, 1, 2, 3])
    expect(gate.held).toBe(2)
    tickets[0]!.release() // idempotent
    expect(gate.held).toBe(2)
    t = 200
    tickets[1]!.release()
    tickets[3]!.release()
    expect(gate.held).toBe(0)
  })

  it('tells refused agents to come back once half the queue ahead drained at the measured welcome speed, even after a quiet hour', async () => {
    let t = 0
    const gate = createHelloGate({ concurrency: 1, queue: 9, now: () => t })
    // Welcomes taking 100 ms each.
    for (let i = 0; i < 20; i++) {
      const g = gate.enter()
      if (!g.ok) throw new Error('refused')
      await g.ticket.turn()
      t += 100
      g.ticket.release()
    }
    const refusedNow = () => {
      const held = Array.from({ length: 10 }, () => gate.enter())
      expect(held.every((g) => g.ok)).toBe(true)
      const refused = gate.enter()
      held.forEach((g) => g.ok && g.ticket.release())
      if (refused.ok) throw new Error('not refused')
      return refused.retryAfterMs
    }
    // 10 ahead at 10 per second: half of them are through in half a second.
    expect(refusedNow()).toBe(500)
    // Nothing for an hour, then a crowd: the welcome speed is the same (the old rate counted the hour).
    t += 3_600_000
    expect(refusedNow()).toBe(500)
  })

  it('spreads a refused crowd over the welcome rate: one slot per welcome, consecutive, bounded to a minute', () => {
    // 500 held, welcomes at 1 per ms (500 at once taking 500 ms each).
    let lastSlotAt = Number.NEGATIVE_INFINITY
    const told = Array.from({ length: 5 }, () => {
      const s = retrySlot({ now: 1_000, held: 500, perMs: 1, lastSlotAt })
      lastSlotAt = s.slotAt
      return s.retryAfterMs
    })
    expect(told).toEqual([250, 251, 252, 253, 254])
    // Later refusals continue after the slots given, or start afresh once those are past.
    expect(retrySlot({ now: 1_100, held: 500, perMs: 1, lastSlotAt }).retryAfterMs).toBe(250)
    expect(retrySlot({ now: 1_000, held: 500, perMs: 0.01, lastSlotAt }).retryAfterMs).toBe(25_000)
    // A slow server never sends an agent away for more than a minute, and the slots after that stay within it.
    const slow = retrySlot({ now: 0, held: 5_000, perMs: 0.001, lastSlotAt: Number.NEGATIVE_INFINITY })
    expect(slow).toEqual({ retryAfterMs: 60_000, slotAt: 60_000 })
    expect(retrySlot({ now: 0, held: 5_000, perMs: 0.001, lastSlotAt: slow.slotAt }).retryAfterMs).toBe(60_000)
    // Never sooner than a quarter second (the agent keeps its own floor as well).
    expect(retrySlot({ now: 0, held: 1, perMs: 1_000, lastSlotAt: Number.NEGATIVE_INFINITY }).retryAfterMs).toBe(250)
  })
})

describe('batch loader (desired states)', () => {
  const desired = (generation: number): TDesired => ({ type: 'desired', generation, instances: [], networks: [], loadBalancers: [] })

  it('reads the requests of one turn in one batch, and those made meanwhile in the next', async () => {
    const calls: string[][] = []
    let release: () => void = () => {}
    const loader = createBatchLoader<string, TDesired>({
      missing: () => new CoreError('NOT_FOUND', 'Node not found'),
      maxBatch: 100,
      concurrency: 1,
      loadMany: async (ids) => {
        calls.push(ids)
        if (calls.length === 1) await new Promise<void>((r) => (release = r))
        return new Map(ids.filter((id) => id !== 'gone').map((id) => [id, desired(calls.length)]))
      },
    })
    const first = ['a', 'b', 'a', 'c'].map((id) => loader.load(id))
    await tick()
    expect(calls).toEqual([['a', 'b', 'c']])
    // Asked while the first batch is being read: a state read before the request would be stale.
    const later = [loader.load('a'), loader.load('gone')]
    release()
    expect((await Promise.all(first)).map((d) => d.generation)).toEqual([1, 1, 1, 1])
    expect((await later[0])!.generation).toBe(2)
    await expect(later[1]).rejects.toThrow(/not found/i)
    expect(calls).toEqual([['a', 'b', 'c'], ['a', 'gone']])
  })

  it('splits large batches and fails only the batch whose read failed', async () => {
    const calls: string[][] = []
    const loader = createBatchLoader<string, TDesired>({
      missing: () => new CoreError('NOT_FOUND', 'Node not found'),
      maxBatch: 2,
      concurrency: 2,
      loadMany: async (ids) => {
        calls.push(ids)
        if (ids.includes('bad')) throw new Error('store unreachable')
        return new Map(ids.map((id) => [id, desired(1)]))
      },
    })
    const res = await Promise.allSettled(['a', 'bad', 'c', 'd'].map((id) => loader.load(id)))
    expect(res.map((r) => r.status)).toEqual(['rejected', 'rejected', 'fulfilled', 'fulfilled'])
    expect(calls).toEqual([['a', 'bad'], ['c', 'd']])
  })
})
