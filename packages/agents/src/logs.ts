/**
 * Batches instance output into `logs` frames: sent every flushMs or as soon as flushLines are
 * waiting, at most maxPerFrame entries and maxFrameBytes per frame (the server closes the
 * connection on frames above MAX_FRAME_BYTES). While disconnected, a bounded buffer keeps the
 * newest lines (the oldest are dropped) and is sent after the next welcome. A pushed batch's
 * `shipped` callback says when the connection took its last line (or it was dropped for good):
 * only then may a follower's persisted cursor move past it, so what a closing agent still held
 * is read again by the next one.
 */
import { MAX_FRAME_BYTES, type TLogs } from '@alveary/core/protocol'

export type LogEntry = TLogs['entries'][number]

export interface LogShipperOptions {
  /** Sends one frame's entries; false when not connected (they stay buffered). */
  send(entries: LogEntry[]): boolean
  flushMs?: number
  flushLines?: number
  /** Buffer bound in entries (and, roughly, bytes); the oldest entries are dropped beyond it. */
  maxBuffered?: number
  maxBufferedBytes?: number
  maxPerFrame?: number
  maxFrameBytes?: number
  /** Called with how many entries were just dropped. */
  onDrop?(count: number): void
}

export interface LogShipper {
  push(entries: readonly LogEntry[], shipped?: () => void): void
  /** Sends everything buffered now (after a welcome); stops at the first refused frame. */
  flush(): void
  readonly buffered: number
  readonly dropped: number
  close(): void
}

/** Size of an entry inside the frame's JSON. */
const entryBytes = (e: LogEntry) => Buffer.byteLength(JSON.stringify(e)) + 1

export function createLogShipper(opts: LogShipperOptions): LogShipper {
  const flushMs = opts.flushMs ?? 500
  const flushLines = opts.flushLines ?? 500
  const maxBuffered = opts.maxBuffered ?? 5000
  const maxBufferedBytes = opts.maxBufferedBytes ?? 16 * 1024 * 1024
  const maxPerFrame = opts.maxPerFrame ?? 2000
  // Room for the frame's own JSON around the entries.
  const maxFrameBytes = opts.maxFrameBytes ?? MAX_FRAME_BYTES - 64 * 1024
  let buf: Array<{ e: LogEntry; bytes: number; shipped?: () => void }> = []
  let bytes = 0
  let dropped = 0
  let timer: NodeJS.Timeout | null = null
  let closed = false

  function schedule(ms: number): void {
    if (closed || timer) return
    timer = setTimeout(() => {
      timer = null
      flush()
    }, ms)
    timer.unref()
  }

  function flush(): void {
    if (timer) clearTimeout(timer)
    timer = null
    while (buf.length) {
      let n = 0
      let size = 0
      while (n < buf.length && n < maxPerFrame) {
        const b = buf[n]!.bytes
        if (n > 0 && size + b > maxFrameBytes) break
        size += b
        n += 1
      }
      const batch = buf.slice(0, n)
      if (!opts.send(batch.map((x) => x.e))) return // disconnected: the next welcome flushes
      buf = buf.slice(n)
      for (const x of batch) bytes -= x.bytes
      for (const x of batch) x.shipped?.()
    }
  }

  return {
    push(entries, shipped) {
      if (closed || entries.length === 0) return
      for (const e of entries) {
        const b = entryBytes(e)
        buf.push({ e, bytes: b })
        bytes += b
      }
      buf[buf.length - 1]!.shipped = shipped
      let drop = 0
      while (buf.length - drop > maxBuffered || (bytes > maxBufferedBytes && buf.length - drop > 1)) {
        bytes -= buf[drop]!.bytes
        drop += 1
      }
      if (drop) {
        const gone = buf.slice(0, drop)
        buf = buf.slice(drop)
        dropped += drop
        opts.onDrop?.(drop)
        for (const x of gone) x.shipped?.()
      }
      if (buf.length >= flushLines && timer) {
        clearTimeout(timer)
        timer = null
      }
      schedule(buf.length >= flushLines ? 0 : flushMs)
    },
    flush,
    get buffered() {
      return buf.length
    },
    get dropped() {
      return dropped
    },
    close() {
      closed = true
      if (timer) clearTimeout(timer)
      timer = null
    },
  }
}
