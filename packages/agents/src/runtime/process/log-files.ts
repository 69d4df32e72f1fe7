/** Output of a process instance: two files in its folder, tailed by polling. */
import { statSync } from 'node:fs'
import { open, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { LineSplitter } from '../lines'
import type { LogFollower, LogLine, LogSink } from '../types'

export function fileSize(path: string): number {
  try {
    return statSync(path).size
  } catch {
    return 0
  }
}

/**
 * Tails `stdout.log` and `stderr.log` of an instance by polling (the files only grow; a file
 * that shrank was truncated and is read from its start again).
 */
export function followFiles(dir: string, from: { stdout: number; stderr: number }, sink: LogSink, pollMs: number): LogFollower {
  const CHUNK = 256 * 1024
  const out: LogLine[] = []
  const streams = (['stdout', 'stderr'] as const).map((name) => {
    const s = { name, path: join(dir, `${name}.log`), offset: from[name], splitter: null as unknown as LineSplitter }
    s.splitter = new LineSplitter((line) => out.push({ stream: name, ts: new Date().toISOString(), line }))
    return s
  })
  const cursor = () => ({ stdout: streams[0]!.offset - streams[0]!.splitter.pendingBytes, stderr: streams[1]!.offset - streams[1]!.splitter.pendingBytes })
  /** Hands over every line read so far, with the cursor right after them. */
  const emit = () => {
    if (out.length) sink(out.splice(0), cursor())
  }
  let timer: NodeJS.Timeout | null = null
  let current: Promise<void> = Promise.resolve()
  let stopped = false

  /** Reads one chunk; true when more is waiting. */
  async function readChunk(s: (typeof streams)[number]): Promise<boolean> {
    // Most polls find nothing new: a stat is cheaper than open + stat + close.
    try {
      if ((await stat(s.path)).size === s.offset) return false
    } catch {
      return false
    }
    let fh
    try {
      fh = await open(s.path, 'r')
    } catch {
      return false
    }
    try {
      const { size } = await fh.stat()
      if (size < s.offset) {
        s.offset = 0
        s.splitter.flush()
      }
      if (size === s.offset) return false
      const len = Math.min(size - s.offset, CHUNK)
      const buf = Buffer.alloc(len)
      const { bytesRead } = await fh.read(buf, 0, len, s.offset)
      s.offset += bytesRead
      s.splitter.push(buf.subarray(0, bytesRead))
      return bytesRead > 0 && s.offset < size
    } finally {
      await fh.close().catch(() => {})
    }
  }

  async function readAll(maxChunks: number): Promise<void> {
    for (const s of streams) {
      for (let i = 0; i < maxChunks && (await readChunk(s)); i++) {
        if (out.length >= 500) emit()
      }
    }
    emit()
  }

  function schedule(): void {
    if (stopped) return
    timer = setTimeout(() => {
      timer = null
      current = readAll(4).catch(() => {}).then(schedule)
    }, pollMs)
    timer.unref()
  }
  schedule()

  return {
    cursor,
    async stop() {
      if (stopped) return current
      stopped = true
      if (timer) clearTimeout(timer)
      await current
      // Whatever the process wrote before it exited, up to 16 MiB per stream.
      await readAll(64).catch(() => {})
      for (const s of streams) s.splitter.flush()
      emit()
    },
    abort() {
      stopped = true
      if (timer) clearTimeout(timer)
    },
  }
}
