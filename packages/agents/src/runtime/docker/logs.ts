/** Following a container's output through the engine's log stream. */
import type Docker from 'dockerode'
import type { Logger } from 'pino'
import { LineSplitter } from '../lines'
import type { LogCursor, LogFollower, LogLine, LogSink } from '../types'
import type { EngineCall } from './deadline'
import { daemonMessage, sleep, statusOf } from './errors'

/** Nanoseconds since the epoch of an RFC 3339 timestamp (Docker: nanoseconds, Podman: seconds). */
export function parseTimestampNs(ts: string): bigint | null {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/.exec(ts)
  if (!m) return null
  const ms = Date.parse(`${m[1]}${m[3]}`)
  if (Number.isNaN(ms)) return null
  return BigInt(ms) * 1_000_000n + BigInt((m[2] ?? '').padEnd(9, '0'))
}
const nsToIso = (ns: bigint) => new Date(Number(ns / 1_000_000n)).toISOString()

export interface ContainerFollower extends LogFollower {
  readonly done: Promise<void>
}

/**
 * Follows a container's output (follow + timestamps, demultiplexed). A stream that breaks
 * while the container still runs is reopened from the cursor; it ends with the container.
 */
export function followContainer(docker: Docker, container: Docker.Container, from: LogCursor | null, sink: LogSink, log: Logger, call: EngineCall): ContainerFollower {
  const ac = new AbortController()
  let stopped = false
  let stream: (NodeJS.ReadableStream & { destroy?: () => void }) | null = null
  const fromNs = from?.ts ? parseTimestampNs(from.ts) : null
  /** Messages to skip when (re)reading from a whole-second `since`. */
  let skip: { ns: bigint; count: number } | null = fromNs !== null ? { ns: fromNs, count: from?.atTs ?? 0 } : null
  let last: { raw: string; ns: bigint; count: number } | null = fromNs !== null && from?.ts ? { raw: from.ts, ns: fromNs, count: from.atTs ?? 0 } : null
  const out: LogLine[] = []
  const cursor = (): LogCursor => (last ? { ts: last.raw, atTs: last.count } : {})
  const frameTs: Record<'stdout' | 'stderr', string> = { stdout: '', stderr: '' }
  const splitters = {
    stdout: new LineSplitter((line) => out.push({ stream: 'stdout', ts: frameTs.stdout || new Date().toISOString(), line })),
    stderr: new LineSplitter((line) => out.push({ stream: 'stderr', ts: frameTs.stderr || new Date().toISOString(), line })),
  }

  function onFrame(name: 'stdout' | 'stderr', chunk: Buffer): void {
    if (stopped) return
    // Every message is prefixed with its timestamp and a space.
    const sp = chunk.indexOf(0x20)
    const raw = sp > 0 && sp < 40 ? chunk.subarray(0, sp).toString('latin1') : ''
    const ns = raw ? parseTimestampNs(raw) : null
    const body = ns !== null ? chunk.subarray(sp + 1) : chunk
    if (ns !== null) {
      if (skip) {
        if (ns < skip.ns) return
        if (ns === skip.ns && skip.count > 0) {
          skip.count -= 1
          return
        }
        skip = null
      }
      if (last && last.ns === ns) last.count += 1
      else last = { raw, ns, count: 1 }
      frameTs[name] = nsToIso(ns)
    }
    splitters[name].push(body)
    if (out.length) sink(out.splice(0), cursor())
  }
  const writer = (name: 'stdout' | 'stderr') => ({ write: (b: Buffer) => (onFrame(name, b), true) }) as unknown as NodeJS.WritableStream

  async function run(): Promise<void> {
    let attempt = 0
    while (!stopped) {
      const since = last ? Number(last.ns / 1_000_000_000n) : 0
      try {
        // The deadline is for the answer; the stream then lasts as long as the container runs.
        const s = (await call('logs', (deadline) =>
          container.logs({ follow: true, stdout: true, stderr: true, timestamps: true, since, abortSignal: AbortSignal.any([ac.signal, deadline]) } as Docker.ContainerLogsOptions & { follow: true }),
        )) as NodeJS.ReadableStream & { destroy?: () => void }
        stream = s
        if (stopped) {
          s.destroy?.()
          break
        }
        await new Promise<void>((resolve) => {
          docker.modem.demuxStream(s, writer('stdout'), writer('stderr'))
          s.once('end', resolve)
          s.once('close', resolve)
          // `on`, not `once`: a second error event must not become an uncaught exception.
          s.on('error', (err: Error) => {
            if (!stopped) log.debug({ err: err.message }, 'container log stream failed')
            resolve()
          })
        })
      } catch (err) {
        if (stopped) break
        if (statusOf(err) === 404) break
        log.debug({ err: daemonMessage(err) }, 'cannot follow the container logs')
      }
      if (stopped) break
      // The stream ends when the container stops; if it still runs (or the engine cannot tell,
      // e.g. while its service restarts), the stream broke: reopen it.
      let running = true
      try {
        running = (await call('inspect', (abortSignal) => container.inspect({ abortSignal }))).State.Running
      } catch (err) {
        running = statusOf(err) !== 404
      }
      if (!running || stopped) break
      attempt += 1
      await sleep(Math.min(5000, 250 * attempt))
      if (last) skip = { ns: last.ns, count: last.count }
    }
    splitters.stdout.flush()
    splitters.stderr.flush()
    if (out.length) sink(out.splice(0), cursor())
  }

  const done = run().catch((err) => log.warn({ err }, 'container log follower failed'))
  let stopping: Promise<void> | null = null
  const abort = () => {
    stopped = true
    ac.abort()
    stream?.destroy?.()
  }
  return {
    done,
    cursor,
    stop() {
      // The stream ends by itself once the container is gone; do not wait for a stuck one.
      stopping ??= Promise.race([done, sleep(2000)]).then(abort)
      return stopping
    },
    abort,
  }
}
