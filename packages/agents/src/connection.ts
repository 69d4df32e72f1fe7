/**
 * The agent's side of the /agent WebSocket: connect, say hello, validate every frame,
 * and reconnect for as long as the agent lives: when the server said when (a refused
 * upgrade's Retry-After, a close reason's retry hint), then, within bounds; otherwise with
 * exponential backoff and full jitter (reconnect-delay.ts).
 */
import WebSocket from 'ws'
import type { Logger } from 'pino'
import { MAX_FRAME_BYTES, ZServerMessage, parseFrame, retryHintOf, type TAgentMessage, type THello, type TServerMessage } from '@alveary/core/protocol'
import { DEFAULT_RECONNECT_BACKOFF, backoffDelay, boundedHint, hintedDelay, parseHintMs, retryAfterOf, type Backoff } from './reconnect-delay'

/** After a close: reconnect (when the server said, else after the backoff), stop, or reconnect after a delay of the agent's own choosing. */
export type CloseDecision = 'reconnect' | 'stop' | { retryInMs: number }

export interface ConnectionOptions {
  url: string
  logger: Logger
  /** Built for every attempt, since the auth to use can change between attempts. */
  hello: () => THello
  onMessage: (msg: TServerMessage) => void
  /**
   * Decides what to do after a close (`code` 1006 also covers failed attempts and refused
   * upgrades): stop, reconnect (when the server said, else after the backoff), or
   * reconnect after a delay of the agent's own choosing. `hintMs`: when the server said
   * (validated, at most MAX_HINT_MS).
   */
  onClose: (code: number, reason: string, hintMs: number | null) => CloseDecision
  backoff?: Backoff
  /** A peer that stops answering pings this long is considered gone (half-open TCP). */
  pingIntervalMs?: number
  random?: () => number
}

export interface Connection {
  start(): void
  /** False when not connected: callers rely on the full resync after the next welcome. */
  send(msg: TAgentMessage): boolean
  /** Called after a successful welcome. */
  resetBackoff(): void
  close(): Promise<void>
}

/**
 * The server refuses text with NUL characters (PostgreSQL cannot store them), and a process
 * may well print one: NUL becomes U+FFFD. JSON writes NUL as the escape \u0000; an escaped
 * backslash before it (an even run of backslashes) is left alone.
 */
export function withoutNul(json: string): string {
  return json.includes('\\u0000') ? json.replace(/(?<=(?:^|[^\\])(?:\\\\)*)\\u0000/g, '\\ufffd') : json
}

export function createConnection(opts: ConnectionOptions): Connection {
  const log = opts.logger
  const backoff = opts.backoff ?? DEFAULT_RECONNECT_BACKOFF
  const pingIntervalMs = opts.pingIntervalMs ?? 15_000
  let ws: WebSocket | null = null
  let attempt = 0
  /** Hinted retries since the last welcome: the floor under a hint doubles with each. */
  let hinted = 0
  let retryTimer: NodeJS.Timeout | null = null
  let pingTimer: NodeJS.Timeout | null = null
  let closed = false

  function connect(): void {
    retryTimer = null
    if (closed) return
    log.debug({ url: opts.url, attempt }, 'connecting')
    const socket = new WebSocket(opts.url, { maxPayload: MAX_FRAME_BYTES, handshakeTimeout: 10_000 })
    ws = socket
    let alive = true
    let refusedHintMs: number | null = null

    // The server refused the upgrade (busy, too many pending connections from here): it says when to retry.
    socket.on('unexpected-response', (_req, res) => {
      refusedHintMs = retryAfterOf(res.headers)
      log.info({ status: res.statusCode, retryInMs: refusedHintMs ?? undefined }, 'server refused the connection for now')
      res.resume()
      socket.terminate()
    })

    socket.on('open', () => {
      log.info({ url: opts.url }, 'connected')
      try {
        socket.send(JSON.stringify(opts.hello()))
      } catch (err) {
        log.error({ err }, 'cannot build the hello frame')
        socket.close(1000, 'agent cannot authenticate')
        return
      }
      pingTimer = setInterval(() => {
        if (!alive) {
          log.warn('server stopped answering pings; reconnecting')
          socket.terminate()
          return
        }
        alive = false
        socket.ping()
      }, pingIntervalMs)
    })
    socket.on('pong', () => {
      alive = true
    })
    socket.on('message', (data, isBinary) => {
      alive = true
      if (isBinary) {
        log.warn('ignoring a binary frame from the server')
        return
      }
      const parsed = parseFrame(ZServerMessage, data.toString())
      if (!parsed.ok) {
        log.warn({ reason: parsed.reason }, 'ignoring a malformed frame from the server')
        return
      }
      try {
        opts.onMessage(parsed.value)
      } catch (err) {
        log.error({ err, type: parsed.value.type }, 'handling a server frame failed')
      }
    })
    socket.on('error', (err) => {
      // 'close' always follows; this only explains it.
      // Said once per outage; the retries that fail the same way are debug.
      log[attempt === 0 ? 'warn' : 'debug']({ err: err.message }, 'connection error')
    })
    socket.on('close', (code, reasonBuf) => {
      if (pingTimer) clearInterval(pingTimer)
      pingTimer = null
      if (ws === socket) ws = null
      if (closed) return
      const reason = reasonBuf.toString()
      const hintMs = refusedHintMs ?? parseHintMs(retryHintOf(reason))
      const next = opts.onClose(code, reason, hintMs)
      if (next === 'stop') {
        closed = true
        return
      }
      let delay: number
      if (typeof next === 'object') delay = next.retryInMs
      else if (hintMs !== null) delay = hintedDelay(boundedHint(hintMs, hinted++, backoff), opts.random)
      else delay = backoffDelay(attempt++, backoff, opts.random)
      log.info({ code, reason: reason || undefined, retryInMs: delay }, 'disconnected; will reconnect')
      retryTimer = setTimeout(connect, delay)
    })
  }

  return {
    start() {
      if (!ws && !retryTimer && !closed) connect()
    },
    send(msg) {
      if (!ws || ws.readyState !== WebSocket.OPEN) return false
      ws.send(withoutNul(JSON.stringify(msg)))
      return true
    },
    resetBackoff() {
      attempt = 0
      hinted = 0
    },
    async close() {
      closed = true
      if (retryTimer) clearTimeout(retryTimer)
      retryTimer = null
      const socket = ws
      if (!socket) return
      await new Promise<void>((resolve) => {
        if (socket.readyState === WebSocket.CLOSED) return resolve()
        socket.once('close', () => resolve())
        // A server that does not complete the closing handshake must not hold the agent.
        const t = setTimeout(() => socket.terminate(), 2000)
        socket.once('close', () => clearTimeout(t))
        if (socket.readyState === WebSocket.CONNECTING) socket.terminate()
        else socket.close(1001, 'agent shutting down')
      })
    },
  }
}
