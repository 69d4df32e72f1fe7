import { appendFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished, vi } from 'vitest'
import { LineSplitter, MAX_LINE_CHARS } from '../src/runtime/lines'
import { createLogShipper, type LogEntry } from '../src/logs'
import { followFiles } from '../src/runtime/process/log-files'
import type { LogCursor } from '../src/runtime/types'
import { tempDir, waitFor } from './helpers'

const entry = (i: number, line = `line ${i}`): LogEntry => ({ instanceId: '11111111-1111-4111-8111-111111111111', stream: 'stdout', ts: new Date(0).toISOString(), line })

describe('line splitter', () => {
  it('splits on newlines across chunks, strips CR, decodes split UTF-8, keeps the pending tail', () => {
    const out: string[] = []
    const s = new LineSplitter((l) => out.push(l))
    const euro = Buffer.from('€') // 3 bytes
    s.push(Buffer.concat([Buffer.from('a\r\nb'), euro.subarray(0, 1)]))
    expect(out).toEqual(['a'])
    expect(s.pendingBytes).toBe(2)
    s.push(Buffer.concat([euro.subarray(1), Buffer.from('\n\nc')]))
    expect(out).toEqual(['a', 'b€', ''])
    s.flush()
    expect(out).toEqual(['a', 'b€', '', 'c'])
    expect(s.pendingBytes).toBe(0)
  })

  it('caps long lines and drops the rest up to the next newline', () => {
    const out: string[] = []
    const s = new LineSplitter((l) => out.push(l))
    s.push(Buffer.from(`${'x'.repeat(10_000)}\nshort\n`))
    expect(out[0]).toHaveLength(MAX_LINE_CHARS)
    expect(out[0]!.endsWith('…')).toBe(true)
    expect(out[1]).toBe('short')
    // A line without newline that never ends does not grow memory without bound.
    out.length = 0
    for (let i = 0; i < 100; i++) s.push(Buffer.alloc(10_000, 0x79))
    expect(out).toHaveLength(1)
    expect(s.pendingBytes).toBe(0)
    s.push(Buffer.from('tail\nnext\n'))
    expect(out.slice(1)).toEqual(['next'])
  })
})

describe('log shipper', () => {
  it('batches by time, sends at once when many lines wait, splits frames by count and bytes', () => {
    vi.useFakeTimers()
    onTestFinished(() => void vi.useRealTimers())
    const frames: LogEntry[][] = []
    const ship = createLogShipper({ send: (e) => (frames.push(e), true), flushMs: 50, flushLines: 10, maxPerFrame: 4, maxFrameBytes: 2000 })
    ship.push([entry(1), entry(2)])
    vi.advanceTimersByTime(49)
    expect(frames).toEqual([])
    vi.advanceTimersByTime(1)
    expect(frames.map((f) => f.length)).toEqual([2])
    frames.length = 0
    ship.push(Array.from({ length: 10 }, (_, i) => entry(i)))
    vi.advanceTimersByTime(0)
    expect(frames.map((f) => f.length)).toEqual([4, 4, 2])
    frames.length = 0
    ship.push([entry(1, 'a'.repeat(1500)), entry(2, 'b'.repeat(1500)), entry(3)])
    ship.flush()
    expect(frames.map((f) => f.length)).toEqual([1, 2])
    ship.close()
  })

  it('keeps the newest lines while disconnected and sends them on flush', () => {
    let connected = false
    const frames: LogEntry[][] = []
    let droppedTotal = 0
    const ship = createLogShipper({
      send: (e) => connected && (frames.push(e), true),
      maxBuffered: 5,
      maxPerFrame: 100,
      onDrop: (n) => (droppedTotal += n),
    })
    ship.push(Array.from({ length: 8 }, (_, i) => entry(i)))
    ship.flush()
    expect(frames).toEqual([])
    expect(ship.buffered).toBe(5)
    expect(droppedTotal).toBe(3)
    connected = true
    ship.flush()
    expect(frames.flat().map((e) => e.line)).toEqual(['line 3', 'line 4', 'line 5', 'line 6', 'line 7'])
    expect(ship.buffered).toBe(0)
    ship.close()
  })

  it('says a batch was shipped once its last line went out or was dropped, never for what a refused send or close left behind', () => {
    let accept = 0
    const shipped: string[] = []
    const ship = createLogShipper({ send: () => accept-- > 0, maxBuffered: 4, maxPerFrame: 2 })
    ship.push([entry(1), entry(2), entry(3)], () => shipped.push('a'))
    accept = 1
    ship.flush()
    // Lines 1 and 2 went out; line 3, the end of batch a, was refused.
    expect([shipped, ship.buffered]).toEqual([[], 1])
    ship.push([entry(4), entry(5)], () => shipped.push('b'))
    ship.push([entry(6), entry(7)], () => shipped.push('c'))
    // Over the bound: line 3 is dropped for good, so batch a is done with.
    expect(shipped).toEqual(['a'])
    accept = 2
    ship.flush()
    expect(shipped).toEqual(['a', 'b', 'c'])
    ship.push([entry(8)], () => shipped.push('d'))
    ship.flush()
    ship.close()
    expect(shipped).toEqual(['a', 'b', 'c'])
  })
})

describe('file follower', () => {
  it('hands each batch over with the cursor right after its last line (a partial line is not in it)', async () => {
    const dir = await tempDir()
    onTestFinished(dir.cleanup)
    await writeFile(join(dir.path, 'stdout.log'), 'old\n')
    await writeFile(join(dir.path, 'stderr.log'), '')
    const batches: Array<{ lines: string[]; cursor: LogCursor }> = []
    const f = followFiles(dir.path, { stdout: 4, stderr: 0 }, (lines, cursor) => batches.push({ lines: lines.map((l) => l.line), cursor }), 10)
    onTestFinished(() => f.abort())
    await appendFile(join(dir.path, 'stdout.log'), 'one\ntwo\npart')
    await appendFile(join(dir.path, 'stderr.log'), 'err\n')
    await waitFor('both streams read', () => batches.flatMap((b) => b.lines).length === 3)
    expect(batches.flatMap((b) => b.lines).sort()).toEqual(['err', 'one', 'two'])
    expect(batches.at(-1)!.cursor).toEqual({ stdout: 12, stderr: 4 })
    await appendFile(join(dir.path, 'stdout.log'), 'ial\n')
    await waitFor('the rest of the line', () => batches.length && batches.at(-1)!.lines.includes('partial'))
    expect(batches.at(-1)!.cursor).toEqual({ stdout: 20, stderr: 4 })
  })
})
