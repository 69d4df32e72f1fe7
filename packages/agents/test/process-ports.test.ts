import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { createProcessDriver } from '../src/runtime/process/driver'
import { isAlive, killGroup, makeInstance, tempDir, waitFor } from './helpers'

// A start whose published ports are set up beside it (network/isolated.ts: the forwards of a
// namespace from the pool): the process runs at once, but the start is complete — and the
// instance reported running — only once they work; if they cannot, the start fails and nothing of it stays.
describe('process driver: ports set up beside the start', () => {
  const cleanups: Array<() => Promise<void> | void> = []
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c()
  })
  async function starting(portsReady: Promise<void>) {
    const dir = await tempDir()
    cleanups.push(dir.cleanup)
    const marker = join(dir.path, 'pid')
    const inst = makeInstance({ spec: { command: '/bin/sh', args: ['-c', `echo $$ > ${marker}; exec sleep 100`] } })
    let done = false
    const start = createProcessDriver({ dataDir: dir.path }).start(inst, undefined, { portsReady })
    void start.then(
      () => (done = true),
      () => (done = true),
    )
    const pid = Number(await waitFor('the process runs', () => (existsSync(marker) && readFileSync(marker, 'utf8').trim()) || null))
    cleanups.push(() => killGroup(pid))
    return { start, pid, done: () => done }
  }

  it('is complete once they are in, not before', async () => {
    let release!: () => void
    const s = await starting(new Promise((r) => (release = r)))
    expect(s.done()).toBe(false)
    release()
    const h = await s.start
    expect(h.pid).toBe(s.pid)
    expect(isAlive(s.pid)).toBe(true)
    await h.stop(1)
  })

  it('fails when they cannot be, and stops what it started', async () => {
    let reject!: (e: Error) => void
    const s = await starting(new Promise((_, r) => (reject = r)))
    expect(s.done()).toBe(false)
    reject(new Error('its port forwards could not be applied (nftables)'))
    await expect(s.start).rejects.toThrow('network not ready: its port forwards could not be applied (nftables)')
    expect(isAlive(s.pid)).toBe(false)
  })
})
