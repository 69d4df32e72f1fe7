/**
 * One instance's output, across its runs: follows each run's log files and knows how far lines
 * were shipped (handed to a connection), not just read. That cursor is what the state file keeps
 * and the next agent resumes from, so lines read but not shipped are read again, never lost.
 */
import type { Logger } from 'pino'
import type { InstanceHandle, LogCursor, LogFollower } from '../runtime/types'
import type { SupervisorOptions } from './types'

export class InstanceOutput {
  private follower: LogFollower | null = null
  /** How far the output was shipped. */
  cursor: LogCursor | null = null
  /** Counts attached followers: a shipped batch of an earlier one must not move the cursor back. */
  private seq = 0
  private drained: Promise<void> = Promise.resolve()
  private aborted = false

  constructor(
    private readonly instanceId: string,
    private readonly onLogs: SupervisorOptions['onLogs'],
    private readonly log: Logger,
    /** A batch was shipped after abort() (by the closing agent): the state file must say so. */
    private readonly shippedAfterAbort: () => void,
  ) {}

  /** Follows a run's output from `from` (null: the start of its files). */
  follow(proc: InstanceHandle, from: LogCursor | null): void {
    const onLogs = this.onLogs
    if (!onLogs) return
    const { instanceId } = this
    const seq = ++this.seq
    const shipped = (c: LogCursor) => {
      if (seq !== this.seq) return
      this.cursor = c
      if (this.aborted) this.shippedAfterAbort()
    }
    try {
      this.follower = proc.followLogs(from, (lines, c) => {
        if (lines.length) onLogs(lines.map((l) => ({ instanceId, stream: l.stream, ts: l.ts, line: l.line })), () => shipped(c))
      })
      this.cursor = this.follower.cursor()
    } catch (err) {
      this.log.warn({ err }, 'cannot follow the instance output')
    }
  }

  /** Lets the follower read the rest of a finished run's output, then drops it. */
  drain(): Promise<void> {
    const f = this.follower
    if (!f) return this.drained
    this.follower = null
    this.drained = f.stop().catch((err) => this.log.warn({ err }, 'reading the last output failed'))
    return this.drained
  }

  /** Resolves once the previous run's last lines are read (the next run must not write before). */
  whenDrained(): Promise<void> {
    return this.drained
  }

  /** Stops reading at once: what was read but not shipped is read again by the next agent. */
  abort(): void {
    this.aborted = true
    this.follower?.abort()
    this.follower = null
  }
}
