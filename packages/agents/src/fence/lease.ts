/**
 * The node's lease as the agent holds it, in a file the watchdogs read: "valid until" in
 * centiseconds of /proc/uptime (monotonic, so a changed wall clock cannot extend it). It is
 * renewed only when the control plane acknowledges a heartbeat, counted from when that
 * heartbeat was sent; if the agent dies or loses the control plane, nobody renews it and
 * the watchdogs stop their instances once it lapses.
 */
import { existsSync, readFileSync } from 'node:fs'
import { readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

/** Centiseconds since boot, the watchdogs' clock. */
export function uptimeCs(): number {
  const [up] = readFileSync('/proc/uptime', 'utf8').split(' ')
  return Math.floor(Number(up) * 100)
}

export interface Lease {
  readonly path: string
  /** Reads what a previous agent left: instances it started keep running while that is valid. */
  load(): Promise<void>
  /** The server welcomed us: the lease starts now, with the server's self-fence period. */
  welcomed(selfFenceMs: number): Promise<void>
  /** A heartbeat went out (its acknowledgement renews the lease as of now). */
  sent(): void
  /** The oldest unacknowledged heartbeat was recorded by the server. */
  acknowledged(): Promise<void>
  /** The connection dropped: heartbeats in flight will never be acknowledged. */
  disconnected(): void
  /** Still valid: instances that need fencing may start. */
  valid(): boolean
}

export function createLease(dataDir: string, opts: { clock?: () => number; onRenewed?: () => void } = {}): Lease {
  // Without /proc (not Linux) no watchdog reads the file: the lease only gates starts.
  const now = opts.clock ?? (existsSync('/proc/uptime') ? uptimeCs : () => Math.floor(performance.now() / 10))
  const path = join(dataDir, 'lease')
  let selfFenceCs = 0
  let until = 0
  const inFlight: number[] = []
  let writing: Promise<void> = Promise.resolve()

  const renew = (from: number) => {
    const wasValid = now() < until
    until = Math.max(until, from + selfFenceCs)
    const text = String(until)
    // Atomic: a watchdog never reads half a number.
    writing = writing.then(async () => {
      const tmp = `${path}.tmp`
      await writeFile(tmp, text, { mode: 0o600 })
      await rename(tmp, path)
    })
    if (!wasValid) opts.onRenewed?.()
    return writing
  }

  return {
    path,
    async load() {
      const n = Number((await readFile(path, 'utf8').catch(() => '0')).trim())
      if (Number.isInteger(n)) until = Math.max(until, n)
    },
    welcomed(selfFenceMs) {
      selfFenceCs = Math.floor(selfFenceMs / 10)
      inFlight.length = 0
      return renew(now())
    },
    sent() {
      inFlight.push(now())
      if (inFlight.length > 100) inFlight.shift()
    },
    acknowledged() {
      const sentAt = inFlight.shift()
      return sentAt === undefined || selfFenceCs === 0 ? writing : renew(sentAt)
    },
    disconnected() {
      inFlight.length = 0
    },
    valid: () => now() < until,
  }
}
