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
 * How many agents are welcomed at once. Welcoming one (its hello authenticated, its node
 * claimed, its desired state read and sent) is what a fleet reconnecting after a restart
 * costs: `concurrency` run at a time in arrival order (core reads and claims those together
 * in batches), `queue` more may wait their turn, and the rest are refused at the upgrade
 * with a time to come back: the time the ones ahead need at the rate welcomes complete,
 * spread at random over as much again, so a refused crowd returns as the queue drains
 * instead of all at once.
 */
export function createHelloGate(opts: { concurrency: number; queue: number; random?: () => number; now?: () => number }) {
  const random = opts.random ?? Math.random
  const now = opts.now ?? (() => performance.now())
  /** Tickets given out and not released; `active` of them are being welcomed. */
  let held = 0
  let active = 0
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
        const drainMs = Math.min(30_000, Math.max(500, (held / opts.concurrency) * welcomeMs()))
        return { ok: false, status: 503, reason: 'busy', retryAfterMs: Math.round(drainMs * (1 + random())) }
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
