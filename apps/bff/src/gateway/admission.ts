import type { Duplex } from 'node:stream'

/**
 * Who may open an agent socket now. A socket is "pending" from its upgrade until the
 * server welcomed it (or it went away): pending sockets cost a hello each and prove
 * nothing yet, so there is a cap per remote address.
 */
export function createAdmission(opts: { maxPendingPerIp: number }) {
  const pendingByIp = new Map<string, number>()

  return {
    /** Takes a pending slot for `ip`, or says why not. The release is idempotent. */
    enter(ip: string): { ok: true; release(): void } | { ok: false; status: number; reason: 'pending_per_ip'; retryAfterMs: number } {
      const n = pendingByIp.get(ip) ?? 0
      if (n >= opts.maxPendingPerIp) return { ok: false, status: 429, reason: 'pending_per_ip', retryAfterMs: 1_000 }
      pendingByIp.set(ip, n + 1)
      let released = false
      return {
        ok: true,
        release() {
          if (released) return
          released = true
          const left = (pendingByIp.get(ip) ?? 1) - 1
          if (left > 0) pendingByIp.set(ip, left)
          else pendingByIp.delete(ip)
        },
      }
    },
    get pending() {
      let n = 0
      for (const v of pendingByIp.values()) n += v
      return n
    },
  }
}

export interface HelloTicket {
  /** Resolves when this connection may be welcomed (at most `concurrency` at once, in arrival order). */
  turn(): Promise<void>
  /** Welcomed and sent its desired state, or gone. Idempotent. */
  release(): void
}

/**
 * When a refused agent should come back. Refusals get consecutive slots, one per welcome the
 * server completes (`perMs`: welcomes per ms), the first once the connections holding tickets
 * are half through: a refused crowd comes back at the rate it can be welcomed, never all at
 * once, and finds places in the queue while the server is still busy with the ones ahead.
 * `lastSlotAt`: the slot given last (same clock as `now`), carried from call to call.
 */
export function retrySlot(o: { now: number; held: number; perMs: number; lastSlotAt: number }): { retryAfterMs: number; slotAt: number } {
  const slotAt = Math.max(o.now + o.held / 2 / o.perMs, o.lastSlotAt + 1 / o.perMs)
  return { retryAfterMs: Math.round(Math.min(MAX_RETRY_MS, Math.max(MIN_RETRY_MS, slotAt - o.now))), slotAt: Math.min(slotAt, o.now + MAX_RETRY_MS) }
}
/** Agents bound a server's hint to at most a minute too (packages/agents/src/reconnect-delay.ts). */
const MAX_RETRY_MS = 60_000
const MIN_RETRY_MS = 250

/**
 * How many agents are welcomed at once. Welcoming one (its hello authenticated, its node
 * claimed, its desired state read and sent) is what a fleet reconnecting after a restart
 * costs: `concurrency` run at a time in arrival order (core reads and claims those together
 * in batches), `queue` more may wait their turn, and the rest are refused at the upgrade
 * with a time to come back (retrySlot) at the rate welcomes complete.
 */
export function createHelloGate(opts: { concurrency: number; queue: number; now?: () => number }) {
  const now = opts.now ?? (() => performance.now())
  /** Tickets given out and not released; `active` of them are being welcomed. */
  let held = 0
  let active = 0
  let lastSlotAt = Number.NEGATIVE_INFINITY
  const waiting: (() => void)[] = []
  /**
   * How long the last welcomes took (a guess of 50 ms before any). The rate is `concurrency`
   * per that time: judged from durations, not from when welcomes happened, so a quiet hour
   * before a crowd does not make the gate look slow.
   */
  const took: number[] = []
  const SAMPLES = 64
  const welcomeMs = () => (took.length ? took.reduce((a, b) => a + b, 0) / took.length : 50)

  const next = () => {
    while (active < opts.concurrency && waiting.length) {
      active++
      waiting.shift()!()
    }
  }

  return {
    enter(): { ok: true; ticket: HelloTicket } | { ok: false; status: 503; reason: 'busy'; retryAfterMs: number } {
      if (held >= opts.concurrency + opts.queue) {
        const slot = retrySlot({ now: now(), held, perMs: opts.concurrency / Math.max(1, welcomeMs()), lastSlotAt })
        lastSlotAt = slot.slotAt
        return { ok: false, status: 503, reason: 'busy', retryAfterMs: slot.retryAfterMs }
      }
      held++
      let state: 'new' | 'waiting' | 'running' | 'released' = 'new'
      let wake: (() => void) | null = null
      let settle: () => void = () => {}
      let startedAt = 0
      const turned = new Promise<void>((r) => (settle = r))
      return {
        ok: true,
        ticket: {
          turn() {
            if (state === 'new') {
              state = 'waiting'
              wake = () => {
                state = 'running'
                startedAt = now()
                settle()
              }
              waiting.push(wake)
              next()
            }
            return turned
          },
          release() {
            if (state === 'released') return
            held--
            if (state === 'running') {
              active--
              took.push(now() - startedAt)
              if (took.length > SAMPLES) took.shift()
            } else if (state === 'waiting') waiting.splice(waiting.indexOf(wake!), 1)
            state = 'released'
            // Whoever waits for its turn goes on (and finds its connection gone).
            settle()
            next()
          },
        },
      }
    },
    /** Connections being welcomed or waiting to be (upgraded, not welcomed yet). */
    get held() {
      return held
    },
  }
}

/** Answers an upgrade request with an HTTP error and when to retry, then closes the socket. */
export function refuseUpgrade(socket: Duplex, status: number, retryAfterMs: number) {
  const text = status === 429 ? 'Too Many Requests' : 'Service Unavailable'
  socket.end(
    `HTTP/1.1 ${status} ${text}\r\nRetry-After: ${Math.max(1, Math.ceil(retryAfterMs / 1000))}\r\nX-Retry-After-Ms: ${Math.round(retryAfterMs)}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`,
  )
}
