import { spawn } from 'node:child_process'
import { afterEach, describe, expect, it } from 'vitest'
import { createUsageMeter } from '../src/usage'
import { killGroup, waitFor } from './helpers'

const pids: number[] = []
afterEach(() => pids.splice(0).forEach(killGroup))

describe.runIf(process.platform === 'linux')('usage meter', () => {
  it('measures CPU and RSS of a process group, children included', async () => {
    // A busy leader plus a child allocating memory, in their own group like real instances.
    const child = spawn(
      process.execPath,
      ['-e', `require('child_process').spawn(process.execPath, ['-e', 'globalThis.b = Buffer.alloc(64 * 1024 * 1024, 1); setInterval(() => {}, 1000)'], { stdio: 'inherit' }); for (;;) {}`],
      { detached: true, stdio: 'ignore' },
    )
    pids.push(child.pid!)
    const meter = createUsageMeter()
    expect((await meter.sample([child.pid!])).cpuUsedMillis).toBe(0) // no previous sample yet
    // Each sample measures since the previous one: once the child holds its 64 MiB, the group
    // shows both (a busy loop gets well over a tenth of a core even on a crowded machine).
    const u = await waitFor('CPU and memory of the group', async () => {
      const s = await meter.sample([child.pid!])
      return s.memoryUsedMb > 64 && s.cpuUsedMillis > 100 ? s : null
    }, 15_000, 200)
    expect(u.memoryUsedMb).toBeGreaterThan(64)
    expect(await meter.sample([])).toEqual({ cpuUsedMillis: 0, memoryUsedMb: 0 })
  })
})
