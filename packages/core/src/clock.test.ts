import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { createManualClock } from './clock'
import { createGroupCommit } from './store/group-commit'

const SRC = import.meta.dirname
/** Files still reading the wall clock themselves, each with the work that removes it. */
const NOT_YET: Record<string, string> = {}

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name)
    if (e.isDirectory()) return e.name === 'generated' ? [] : sources(p)
    return e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') ? [p] : []
  })
}

describe('time in core', () => {
  it('is read and waited for only through the injected Clock', () => {
    const raw = /\bnew Date\(\)|\bDate\.now\(|\bsetTimeout\(|\bsetInterval\(|\bperformance\.now\(/
    const offenders = sources(SRC)
      .map((f) => path.relative(SRC, f))
      .filter((f) => f !== 'clock.ts')
      .filter((f) => readFileSync(path.join(SRC, f), 'utf8').split('\n').some((line) => raw.test(line) && !line.trim().startsWith('//')))
    // An entry of NOT_YET that no longer offends must go, so the list only shrinks.
    expect(offenders.sort(), 'use the injected Clock: clock.now(), clock.setTimer(), every(clock, …) (src/clock.ts)').toEqual(Object.keys(NOT_YET).sort())
  })

  it('drives group commits: a write waits maxDelayMs on the clock, then goes in one flush', async () => {
    const clock = createManualClock()
    const flushed: Map<string, number>[] = []
    const gc = createGroupCommit<string, number>({ clock, maxDelayMs: 50, onError: () => {}, flush: async (items) => void flushed.push(items) })
    const a = gc.add('a', 1)
    const b = gc.add('b', 2)
    gc.add('a', 3)
    await clock.advance(49)
    expect(flushed).toHaveLength(0)
    await clock.advance(1)
    await Promise.all([a, b])
    expect(flushed).toEqual([new Map([['a', 3], ['b', 2]])])
  })

  it('writes a group commit someone waits on (`now`) in the next turn, with what is pending, without waiting on the clock', async () => {
    const clock = createManualClock()
    const flushed: Map<string, number>[] = []
    const gc = createGroupCommit<string, number>({ clock, maxDelayMs: 50, onError: () => {}, flush: async (items) => void flushed.push(items) })
    const a = gc.add('a', 1)
    const b = gc.add('b', 2, { now: true })
    await Promise.all([a, b])
    expect(flushed).toEqual([new Map([['a', 1], ['b', 2]])])
    // The timer it replaced is gone: nothing flushes again.
    await clock.advance(50)
    expect(flushed).toHaveLength(1)
  })
})
