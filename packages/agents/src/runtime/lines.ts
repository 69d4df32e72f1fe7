/**
 * Splits a byte stream into lines for the `logs` frames. Works on bytes so a multi-byte
 * character split across chunks is decoded whole, and so the caller can tell how many bytes
 * are consumed (log file offsets). Lines are capped: a line longer than MAX_LINE_CHARS is
 * cut (marked with …) and the rest of it, up to the next newline, is dropped.
 */
export const MAX_LINE_CHARS = 8192
/** Pending bytes without a newline beyond which the line is emitted cut. */
const MAX_PENDING_BYTES = MAX_LINE_CHARS * 4

export function capLine(s: string): string {
  return s.length > MAX_LINE_CHARS ? `${s.slice(0, MAX_LINE_CHARS - 1)}…` : s
}

export class LineSplitter {
  private pending: Buffer[] = []
  private pendingLen = 0
  private skipping = false

  constructor(private readonly emit: (line: string) => void) {}

  /** Bytes received but not yet part of an emitted (or dropped) line. */
  get pendingBytes(): number {
    return this.pendingLen
  }

  push(chunk: Buffer): void {
    let start = 0
    for (;;) {
      const nl = chunk.indexOf(0x0a, start)
      if (nl < 0) break
      const part = chunk.subarray(start, nl)
      if (this.skipping) this.skipping = false
      else this.emitBytes(this.pendingLen ? Buffer.concat([...this.pending, part]) : part)
      this.pending = []
      this.pendingLen = 0
      start = nl + 1
    }
    if (start >= chunk.length || this.skipping) return
    const rest = chunk.subarray(start)
    this.pending.push(Buffer.from(rest))
    this.pendingLen += rest.length
    if (this.pendingLen > MAX_PENDING_BYTES) {
      this.emitBytes(Buffer.concat(this.pending))
      this.pending = []
      this.pendingLen = 0
      this.skipping = true
    }
  }

  /** Emits a last line without newline (the writer is gone). */
  flush(): void {
    if (this.pendingLen && !this.skipping) this.emitBytes(Buffer.concat(this.pending))
    this.pending = []
    this.pendingLen = 0
    this.skipping = false
  }

  private emitBytes(b: Buffer): void {
    let s = b.toString('utf8')
    if (s.endsWith('\r')) s = s.slice(0, -1)
    this.emit(capLine(s))
  }
}
