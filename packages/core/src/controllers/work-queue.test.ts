import { describe, expect, it } from 'vitest'
import { createManualClock } from '../clock'
import { createWorkQueue } from './work-queue'

/** A promise and the function that resolves it. */
function gate() {
  let open!: () => void
  const p = new Promise<void>((r) => (open = r))
  return { p, open }
}

describe('work queue', () => {
  it('deduplicates queued keys and never runs one key twice at once', async () => {
    const seen: string[] = []
    let concurrentSame = 0
    const inFlight = new Set<string>()
    const first = gate()
    const q = createWorkQueue({
      workers: 1,
      clock: createManualClock(),
      async handle(k) {
        if (inFlight.has(k)) concurrentSame++
        inFlight.add(k)
        seen.push(k)
        if (seen.length === 1) await first.p
        inFlight.delete(k)
      },
    })
    q.add('a')
    q.add('a') // a is running: marked dirty, runs once more afterwards
    q.add('a')
    q.add('b') // queued while a runs: deduplicated
    q.add('b')
    first.open()
    await q.idle()
    expect(concurrentSame).toBe(0)
    expect(seen.filter((k) => k === 'a')).toHaveLength(2)
    expect(seen.filter((k) => k === 'b')).toHaveLength(1)
  })

  it('retries failures with doubling backoff on the injected clock', async () => {
    const clock = createManualClock()
    const calls: number[] = []
    const q = createWorkQueue({
      workers: 1,
      clock,
      baseBackoffMs: 100,
      async handle() {
        calls.push(clock.now().getTime())
        if (calls.length < 3) throw new Error('boom')
      },
    })
    q.add('k')
    await q.idle()
    expect(calls).toHaveLength(1)
    await clock.advance(99)
    expect(calls).toHaveLength(1)
    await clock.advance(1)
    await q.idle()
    expect(calls).toHaveLength(2)
    await clock.advance(199)
    expect(calls).toHaveLength(2)
    await clock.advance(1)
    await q.idle()
    expect(calls).toHaveLength(3)
    expect(calls[1]! - calls[0]!).toBe(100)
    expect(calls[2]! - calls[1]!).toBe(200)
    await q.stop()
  })
})

describe('work queue priorities', () => {
  it('takes critical before high before low, and raises a waiting key', async () => {
    const seen: string[] = []
    const block = gate()
    const q = createWorkQueue({
      workers: 1,
      clock: createManualClock(),
      async handle(k) {
        if (k === 'block') await block.p
        else seen.push(k)
      },
    })
    q.add('block')
    q.add('resync', 'low')
    q.add('user', 'high')
    q.add('node-lost', 'critical')
    q.add('later', 'low')
    q.add('later', 'critical') // raised
    block.open()
    await q.idle()
    expect(seen).toEqual(['node-lost', 'later', 'user', 'resync'])
  })
})
