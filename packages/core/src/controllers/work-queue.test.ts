import { describe, expect, it } from 'vitest'
import { createWorkQueue } from './work-queue'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe('work queue', () => {
  it('deduplicates queued keys and never runs one key twice at once', async () => {
    const seen: string[] = []
    let concurrentSame = 0
    const inFlight = new Set<string>()
    const q = createWorkQueue({
      workers: 1,
      async handle(k) {
        if (inFlight.has(k)) concurrentSame++
        inFlight.add(k)
        seen.push(k)
        await sleep(20)
        inFlight.delete(k)
      },
    })
    q.add('a')
    q.add('a') // a is running: marked dirty, runs once more afterwards
    q.add('a')
    q.add('b') // queued while a runs: deduplicated
    q.add('b') // queued while a runs: deduplicated
    await sleep(5)
    await q.idle()
    expect(concurrentSame).toBe(0)
    expect(seen.filter((k) => k === 'a')).toHaveLength(2)
    expect(seen.filter((k) => k === 'b')).toHaveLength(1)
  })

  it('retries failures with backoff', async () => {
    let calls = 0
    const q = createWorkQueue({
      workers: 1,
      baseBackoffMs: 10,
      async handle() {
        calls++
        if (calls < 3) throw new Error('boom')
      },
    })
    q.add('k')
    await sleep(100)
    expect(calls).toBe(3)
    await q.stop()
  })
})

describe('work queue priorities', () => {
  it('takes critical before high before low, and raises a waiting key', async () => {
    const seen: string[] = []
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    const q = createWorkQueue({
      workers: 1,
      async handle(k) {
        if (k === 'block') await gate
        else seen.push(k)
      },
    })
    q.add('block')
    q.add('resync', 'low')
    q.add('user', 'high')
    q.add('node-lost', 'critical')
    q.add('later', 'low')
    q.add('later', 'critical') // raised
    release()
    await q.idle()
    expect(seen).toEqual(['node-lost', 'later', 'user', 'resync'])
  })
})
