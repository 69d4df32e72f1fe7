import { randomUUID } from 'node:crypto'
import type { ControlPlane } from '@alveary/core'
import { CoreError, RejectedRow } from '@alveary/core'
import { CloseCode, PROTOCOL_VERSION, parseFrame, withRetryHint, ZAgentMessage, type TAgentMessage, type TDesired, type TServerMessage } from '@alveary/core/protocol'
import type { Logger } from 'pino'
import type { WebSocket } from 'ws'
import type { HelloTicket } from './admission'
import type { GatewayCounters, RejectReason } from './counters'
import { createCommandDelivery } from './commands'
import { createDesiredPusher } from './push'

export interface ConnectionLimits {
  /** A socket that has not sent hello by then is closed. */
  helloTimeoutMs: number
  /** Reading pauses above these (frames or bytes received but not handled yet)... */
  pauseAtFrames: number
  pauseAtBytes: number
  /** ...and the connection closes above these (data already read when the pause began). */
  closeAtFrames: number
  closeAtBytes: number
}

export interface ConnectionContext {
  core: ControlPlane
  log: Logger
  counters: GatewayCounters
  limits: ConnectionLimits
  heartbeatIntervalMs: number
  remote: string
  /** This connection's place among those being welcomed: held until its first desired state is sent. */
  hello: HelloTicket
  /** Reads the node's desired state (batched with other connections'). */
  loadDesired(nodeId: string): Promise<TDesired>
  /** The socket proved who it is (welcomed): it no longer counts as pending. */
  onWelcome(conn: AgentConnection): void
  onClose(conn: AgentConnection): void
}

export interface AgentConnection {
  readonly nodeId: string | null
  /** This connection's claim on its node (see NodeLeases). */
  readonly sessionId: string
  /** When the peer last sent a frame (performance.now()). */
  readonly lastHeardAt: number
  /** Generation of the desired state last sent (null: none yet). */
  readonly sentGeneration: number | null
  /** Sends the node's current desired state (coalesced, retried while the connection lives). */
  push(): void
  /** Sends the one-shot commands waiting for the node (and those not answered yet). */
  deliver(): void
  close(code: number, reason: string): void
  /** Resolves when no frame of this connection is being handled. */
  idle(): Promise<void>
}

/**
 * One agent socket. Frames are handled one at a time, in order. Every frame is validated;
 * a bad one closes the connection with a reason, and nothing received after that point is
 * applied. The frames waiting to be handled are bounded: reading pauses (TCP pushes back
 * on the peer) and a peer that still outruns the server is closed.
 */
export function serveAgentConnection(ws: WebSocket, ctx: ConnectionContext): AgentConnection {
  const { core, log, counters, limits } = ctx
  let nodeId: string | null = null
  const sessionId = randomUUID()
  let lastHeardAt = performance.now()
  let sentGeneration: number | null = null
  let closed = false
  const inbox: Buffer[] = []
  let queuedBytes = 0
  let paused = false
  let running: Promise<void> | null = null

  const send = (msg: TServerMessage) => ws.send(JSON.stringify(msg))
  const pusher = createDesiredPusher({
    load: () => ctx.loadDesired(nodeId!),
    send: (d) => {
      if (ws.readyState !== ws.OPEN) return
      send(d)
      sentGeneration = d.generation
      // Welcomed and up to date: the next agent may be welcomed.
      ctx.hello.release()
    },
    isOpen: () => !closed,
    onError: (err) => log.warn({ nodeId, err: err.message }, 'desired state push failed; retrying'),
  })

  const commands = createCommandDelivery({ core, log })
  const deliver = () => {
    const id = nodeId
    if (!id || closed) return
    void commands.deliver(id, (m) => ws.readyState === ws.OPEN && send(m)).catch((err) => log.warn({ nodeId: id, err: err.message }, 'delivering agent commands failed'))
  }

  const close = (code: number, reason: string) => {
    if (closed) return
    closed = true
    pusher.stop()
    ctx.hello.release()
    clearTimeout(helloTimer)
    inbox.length = 0
    queuedBytes = 0
    // The peer's closing handshake must be read for the close to complete.
    if (paused) ws.resume()
    ws.close(code, reason.slice(0, 120))
  }
  const reject = (why: RejectReason, code: number, reason: string) => {
    counters.reject(why)
    log.warn({ remote: ctx.remote, nodeId, code, reason }, 'closing agent connection')
    close(code, reason)
  }

  const helloTimer = setTimeout(() => reject('hello_timeout', CloseCode.helloTimeout, `no hello within ${limits.helloTimeoutMs} ms`), limits.helloTimeoutMs)

  const hello = async (msg: TAgentMessage) => {
    clearTimeout(helloTimer)
    if (msg.type !== 'hello') return reject('not_hello_first', CloseCode.badFrame, 'first frame must be hello')
    if (msg.protocolVersion !== PROTOCOL_VERSION) return reject('version', CloseCode.versionMismatch, `protocol ${msg.protocolVersion} not supported; server speaks ${PROTOCOL_VERSION}`)
    // Welcomed in turn: after a restart the whole fleet says hello within seconds.
    await ctx.hello.turn()
    if (closed) return
    let res: Awaited<ReturnType<ControlPlane['agents']['hello']>>
    try {
      res = await core.agents.hello(msg, sessionId, ctx.remote)
    } catch (err) {
      if (err instanceof CoreError && err.code === 'UNAUTHORIZED') return reject('unauthorized', CloseCode.unauthorized, err.message)
      if (err instanceof CoreError && err.code === 'CONFLICT') return reject('name_taken', CloseCode.nameTaken, err.message)
      // The store is unreachable: nothing is wrong with this agent; it retries later.
      log.warn({ remote: ctx.remote, err: (err as Error).message }, 'hello failed')
      return close(1013, 'server cannot reach its store; try again later')
    }
    if (closed) return
    if (!res.ok) {
      // Never ping-pong: the live connection keeps the node; this one waits until that one could be gone.
      return reject('duplicate', CloseCode.duplicate, withRetryHint(`node ${msg.node.name} already has a live connection`, res.retryAfterMs))
    }
    nodeId = res.nodeId
    ctx.onWelcome(conn)
    // The credential minted by a join travels only in this frame.
    send({ type: 'welcome', nodeId, heartbeatIntervalMs: ctx.heartbeatIntervalMs, selfFenceMs: core.fencing.selfFenceMs, ...(res.credential ? { credential: res.credential } : {}) })
    pusher.push()
    deliver()
    log.info({ nodeId, name: msg.node.name, remote: ctx.remote }, 'agent connected')
  }

  const handle = async (raw: string) => {
    const parsed = parseFrame(ZAgentMessage, raw)
    if (!parsed.ok) return reject(parsed.reason === 'frame is not JSON' ? 'not_json' : 'invalid', CloseCode.badFrame, parsed.reason)
    const msg = parsed.value
    counters.count(counters.frames, msg.type)
    if (!nodeId) return hello(msg)
    const id = nodeId
    try {
      switch (msg.type) {
        case 'hello':
          return reject('hello_twice', CloseCode.badFrame, 'hello sent twice')
        case 'heartbeat': {
          const at = performance.now()
          const landed = await core.agents.heartbeat(id, sessionId, msg)
          counters.observeHeartbeatLag(performance.now() - at)
          if (landed === 'fenced') return close(CloseCode.replaced, 'another connection of this node took over')
          // Recorded: the node's lease is renewed (its watchdogs count from here).
          if (ws.readyState === ws.OPEN) send({ type: 'lease' })
          return
        }
        case 'status':
          return await core.agents.report(id, msg.full, msg.instances, msg.loadBalancers && { generation: msg.lbGeneration ?? 0, reports: msg.loadBalancers })
        case 'logs':
          return await core.telemetry.ingestLogs(id, msg.entries)
        case 'metrics':
          return await core.telemetry.ingestMetrics(id, msg)
        case 'command-result':
          return await commands.answered(id, msg)
        case 'command-progress':
          return await commands.progress(id, msg)
        case 'volume-usage':
          return await core.agents.volumeUsage(id, msg.volumes)
        case 'lb-stats':
          return await core.agents.lbStats(id, msg.servers)
      }
    } catch (err) {
      if (err instanceof RejectedRow) return reject('store_refused', CloseCode.badFrame, `${msg.type} ${err.message}`)
      // The store is unreachable: periodic data (heartbeats, logs, metrics) is dropped; a lost
      // status report is healed by the full report the agent sends after reconnecting.
      log.warn({ nodeId: id, type: msg.type, err: (err as Error).message }, 'agent frame not recorded')
      if (msg.type === 'status') close(1011, 'store unavailable; reconnect and report again')
    }
  }

  const drain = async () => {
    while (inbox.length && !closed) {
      const data = inbox.shift()!
      queuedBytes -= data.length
      if (paused && inbox.length <= limits.pauseAtFrames / 2 && queuedBytes <= limits.pauseAtBytes / 2) {
        paused = false
        ws.resume()
      }
      try {
        await handle(data.toString())
      } catch (err) {
        log.error({ nodeId, err: (err as Error).message }, 'agent frame failed')
        close(1011, 'internal error')
      }
    }
  }
  const kick = () => {
    running ??= drain().finally(() => (running = null))
  }

  ws.on('message', (data, isBinary) => {
    if (closed) return
    lastHeardAt = performance.now()
    if (isBinary) return reject('binary', CloseCode.badFrame, 'binary frames are not accepted')
    const buf = data as Buffer
    inbox.push(buf)
    queuedBytes += buf.length
    if (inbox.length > limits.closeAtFrames || queuedBytes > limits.closeAtBytes) {
      return reject('overrun', CloseCode.overrun, `more than ${inbox.length - 1} frames (${queuedBytes} bytes) waiting: slow down`)
    }
    if (!paused && (inbox.length >= limits.pauseAtFrames || queuedBytes >= limits.pauseAtBytes)) {
      paused = true
      ws.pause()
    }
    kick()
  })
  ws.on('error', (err) => {
    if ((err as { code?: string }).code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') counters.reject('too_big')
    log.warn({ nodeId, err: err.message }, 'agent socket error')
  })
  ws.on('close', () => {
    closed = true
    pusher.stop()
    clearTimeout(helloTimer)
    inbox.length = 0
    ctx.onClose(conn)
  })

  const conn: AgentConnection = {
    get nodeId() {
      return nodeId
    },
    sessionId,
    get lastHeardAt() {
      return lastHeardAt
    },
    get sentGeneration() {
      return sentGeneration
    },
    push: () => nodeId && pusher.push(),
    deliver,
    close,
    idle: async () => {
      while (running) await running
      await pusher.idle()
    },
  }
  return conn
}
