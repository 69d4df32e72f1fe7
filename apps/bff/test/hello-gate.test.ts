import { CoreError, createBatchLoader } from '@alveary/core'
import type { TDesired } from '@alveary/core/protocol'
import { describe, expect, it } from 'vitest'
import { createHelloGate } from '../src/gateway/admission'

const tick = () => new Promise((r) => setImmediate(r))

describe('hello gate', () => {
  it('welcomes `concurrency` at a time in arrival order, queues `queue` more and refuses the rest with a time to come back', async () => {
    let t = 0
    const gate = createHelloGate({ concurrency: 2, queue: 2, random: () => 0.5, now: () => t })
    const tickets = [0, 1, 2, 3].map(() => {
      const g = gate.enter()
      if (!g.ok) throw new Error('refused too early')
      return g.ticket
    })
    const refused = gate.enter()
    expect(refused.ok).toBe(false)
    // No welcome measured yet: the guess (50 ms per welcome, 2 at once) for 4 ahead is 100 ms, at least 500 ms, then spread.
    if (!refused.ok) expect(refused.retryAfterMs).toBe(750)

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

  it('tells refused agents to come back after the queue ahead drains at the measured welcome speed, even after a quiet hour', async () => {
    let t = 0
    const gate = createHelloGate({ concurrency: 1, queue: 9, random: () => 0, now: () => t })
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
    // 10 ahead at ~10 per second: about a second.
    expect(refusedNow()).toBe(1_000)
    // Nothing for an hour, then a crowd: the welcome speed is the same (the old rate counted the hour).
    t += 3_600_000
    expect(refusedNow()).toBe(1_000)
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
