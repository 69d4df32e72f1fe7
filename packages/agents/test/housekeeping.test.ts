import { existsSync } from 'node:fs'
import { mkdir, stat, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { parseConfig } from '../src/config'
import { createHousekeeping } from '../src/housekeeping'
import { createProcessDriver, instanceDir } from '../src/runtime/process/driver'
import type { LogLine } from '../src/runtime/types'
import { killGroup, makeInstance, nodeScript, tempDir, testLogger, waitFor } from './helpers'

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

describe('instance folders: output rotation and garbage collection', () => {
  it('caps a running process instance\'s output files; the instance keeps writing and its lines keep arriving', async () => {
    const dir = await tempDir()
    cleanups.push(dir.cleanup)
    const driver = createProcessDriver({ dataDir: dir.path })
    // ~100 KiB/s of numbered lines.
    const inst = makeInstance({ spec: nodeScript(`let n = 0; setInterval(() => { for (let i = 0; i < 100; i++) console.log('line ' + n++ + ' ' + 'x'.repeat(90)) }, 100)`) })
    const handle = await driver.start(inst)
    cleanups.push(() => killGroup(handle.pid))
    const lines: LogLine[] = []
    const follower = handle.followLogs(null, (batch) => lines.push(...batch))
    cleanups.push(() => follower.stop())
    const CAP = 64 * 1024
    const hk = createHousekeeping({ dataDir: dir.path, maxLogBytes: CAP, retentionMs: 3_600_000, log: testLogger })
    const out = join(instanceDir(dir.path, inst.instanceId), 'stdout.log')

    let rotations = 0
    const lastNumber = () => Number(/^line (\d+)/.exec(lines.at(-1)?.line ?? '')?.[1] ?? -1)
    await waitFor('three rotations', async () => {
      await waitFor('the file above the cap', async () => (await stat(out)).size > CAP, 20_000)
      rotations += (await hk.sweep()).rotated
      return rotations >= 3
    }, 60_000)
    expect(existsSync(`${out}.1`)).toBe(true)
    expect((await stat(`${out}.1`)).size).toBeGreaterThan(CAP)
    // Truncated in place: the instance's next writes land at the start (append mode), not after a hole.
    expect((await stat(out)).size).toBeLessThan(CAP * 4)
    // The follower read the truncated file from its start: newer lines keep coming.
    const seen = lastNumber()
    await waitFor('lines written after the rotation', async () => lastNumber() > seen + 200, 20_000)
    expect(lines.every((l) => /^line \d+ x+$/.test(l.line))).toBe(true)
  })

  it('deletes folders of instances gone for longer than the retention, and only those', async () => {
    const dir = await tempDir()
    cleanups.push(dir.cleanup)
    const root = join(dir.path, 'instances')
    const folder = async (name: string, opts: { state: boolean; ageHours: number }) => {
      const d = join(root, name)
      await mkdir(d, { recursive: true })
      await writeFile(join(d, 'stdout.log'), 'hello\n')
      if (opts.state) await writeFile(join(d, 'state.json'), '{}')
      const t = new Date(Date.now() - opts.ageHours * 3_600_000)
      for (const f of ['stdout.log', ...(opts.state ? ['state.json'] : [])]) await utimes(join(d, f), t, t)
      await utimes(d, t, t)
      return d
    }
    const goneLongAgo = await folder('gone-long-ago', { state: false, ageHours: 30 })
    const goneRecently = await folder('gone-recently', { state: false, ageHours: 2 })
    const runningQuietly = await folder('running-quietly', { state: true, ageHours: 100 })
    const hk = createHousekeeping({ dataDir: dir.path, maxLogBytes: 1024 * 1024, retentionMs: 24 * 3_600_000, log: testLogger })
    expect(await hk.sweep()).toEqual({ rotated: 0, removed: 1 })
    expect(existsSync(goneLongAgo)).toBe(false)
    expect(existsSync(goneRecently)).toBe(true)
    expect(existsSync(runningQuietly)).toBe(true)
    // A data folder without instances yet is fine.
    const empty = await tempDir()
    cleanups.push(empty.cleanup)
    expect(await createHousekeeping({ dataDir: empty.path, maxLogBytes: 1, retentionMs: 0, log: testLogger }).sweep()).toEqual({ rotated: 0, removed: 0 })
  })

  it('takes the cap and the retention from flags or the environment', () => {
    expect(parseConfig([], {})).toMatchObject({ kind: 'config', config: { logMaxMb: 10, instanceRetentionHours: 24 } })
    expect(parseConfig(['--log-max-mb', '50', '--instance-retention-hours', '0'], {})).toMatchObject({ kind: 'config', config: { logMaxMb: 50, instanceRetentionHours: 0 } })
    expect(parseConfig([], { ALVEARY_LOG_MAX_MB: '5', ALVEARY_INSTANCE_RETENTION_HOURS: '72' })).toMatchObject({ kind: 'config', config: { logMaxMb: 5, instanceRetentionHours: 72 } })
    expect(parseConfig(['--log-max-mb', '0'], {})).toMatchObject({ kind: 'error', message: expect.stringContaining('--log-max-mb') })
  })
})
