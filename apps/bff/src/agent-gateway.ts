import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { ChangeBus, ControlPlane } from '@alveary/core'
import { CoreError } from '@alveary/core'
import { CloseCode, MAX_FRAME_BYTES, PROTOCOL_VERSION, parseFrame, ZAgentMessage, type TServerMessage } from '@alveary/core/protocol'
import type { Logger } from 'pino'
import { WebSocketServer, type WebSocket } from 'ws'
import { createCommandDelivery } from './gateway/commands'

export interface AgentGatewayDeps {
  core: ControlPlane
  bus: ChangeBus
  log: Logger
  heartbeatIntervalMs: number
}

/**
 * The /agent WebSocket endpoint. One connection per node; the first frame must be a valid
 * hello. Every frame is validated; a bad one closes that connection with a reason and
 * changes nothing. Desired state is pushed whenever the node's generation changes.
 */
export function createAgentGateway({ core, bus, log, heartbeatIntervalMs }: AgentGatewayDeps) {
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES })
  const byNode = new Map<string, { ws: WebSocket; push(): void; deliver(): void }>()
  const commands = createCommandDelivery({ core, log })
  /** Frames handled by type and connections closed for bad input, for /metrics. */
  const counters = { frames: new Map<string, number>(), rejected: 0 }
  /** Each connection's frame chain, so closing waits for frames being handled. */
  const inFlight = new Set<Promise<void>>()

  const send = (ws: WebSocket, msg: TServerMessage) => ws.send(JSON.stringify(msg))

  wss.on('connection', (ws: WebSocket, req: IncomingMessage) => {
    const remote = req.socket.remoteAddress
    let nodeId: string | null = null
    let busy: Promise<void> = Promise.resolve()
    let pushing = false
    let pushAgain = false
    const close = (code: number, reason: string) => {
      if (code !== 1011) counters.rejected++
      log.warn({ remote, nodeId, code, reason }, 'closing agent connection')
      ws.close(code, reason.slice(0, 120))
    }

    const deliver = () => {
      const id = nodeId
      if (!id) return
      void commands.deliver(id, (m) => ws.readyState === ws.OPEN && send(ws, m)).catch((err) => log.error({ nodeId: id, err: err.message }, 'delivering agent commands failed'))
    }

    // Coalesces bursts of changes into one send of the latest full state.
    const push = () => {
      if (!nodeId) return
      if (pushing) {
        pushAgain = true
        return
      }
      pushing = true
      const id = nodeId
      void core.agents
        .desiredFor(id)
        .then((d) => ws.readyState === ws.OPEN && send(ws, d))
        .catch((err) => log.error({ nodeId: id, err: err.message }, 'desired state failed'))
        .finally(() => {
          pushing = false
          if (pushAgain) {
            pushAgain = false
            push()
          }
        })
    }

    const handle = async (raw: string) => {
      const parsed = parseFrame(ZAgentMessage, raw)
      if (!parsed.ok) return close(CloseCode.badFrame, parsed.reason)
      const msg = parsed.value
      counters.frames.set(msg.type, (counters.frames.get(msg.type) ?? 0) + 1)
      if (!nodeId) {
        if (msg.type !== 'hello') return close(CloseCode.badFrame, 'first frame must be hello')
        if (msg.protocolVersion !== PROTOCOL_VERSION) return close(CloseCode.versionMismatch, `protocol ${msg.protocolVersion} not supported; server speaks ${PROTOCOL_VERSION}`)
        let credential: string | undefined
        try {
          const res = await core.agents.hello(msg)
          nodeId = res.nodeId
          credential = res.credential
        } catch (err) {
          if (err instanceof CoreError && err.code === 'UNAUTHORIZED') return close(CloseCode.unauthorized, err.message)
          throw err
        }
        // A node has one connection: a newer one replaces the older.
        byNode.get(nodeId)?.ws.close(CloseCode.replaced, 'replaced by a newer connection')
        byNode.set(nodeId, { ws, push, deliver })
        // The credential minted by a join travels only in this frame.
        send(ws, { type: 'welcome', nodeId, heartbeatIntervalMs, selfFenceMs: core.fencing.selfFenceMs, ...(credential ? { credential } : {}) })
        push()
        deliver()
        log.info({ nodeId, name: msg.node.name, remote }, 'agent connected')
        return
      }
      if (msg.type === 'hello') return close(CloseCode.badFrame, 'hello sent twice')
      if (msg.type === 'heartbeat') {
        await core.agents.heartbeat(nodeId, msg)
        // Recorded: the node's lease is renewed (its watchdogs count from here).
        send(ws, { type: 'lease' })
      } else if (msg.type === 'status')
        await core.agents.report(nodeId, msg.full, msg.instances, msg.loadBalancers && { generation: msg.lbGeneration ?? 0, reports: msg.loadBalancers })
      else if (msg.type === 'logs') await core.telemetry.ingestLogs(nodeId, msg.entries)
      else if (msg.type === 'metrics') await core.telemetry.ingestMetrics(nodeId, msg)
      else if (msg.type === 'command-result') await commands.answered(nodeId, msg)
      else if (msg.type === 'command-progress') await commands.progress(nodeId, msg)
      else await core.agents.volumeUsage(nodeId, msg.volumes)
    }

    ws.on('message', (data, isBinary) => {
      if (isBinary) return close(CloseCode.badFrame, 'binary frames are not accepted')
      // Frames are handled one at a time per connection, in order.
      const next = busy
        .then(() => handle(data.toString()))
        .catch((err) => {
          log.error({ nodeId, err: (err as Error).message }, 'agent frame failed')
          close(1011, 'internal error')
        })
      busy = next
      inFlight.add(next)
      void next.finally(() => inFlight.delete(next))
    })
    ws.on('error', (err) => log.warn({ nodeId, err: err.message }, 'agent socket error'))
    ws.on('close', () => {
      if (nodeId && byNode.get(nodeId)?.ws === ws) {
        byNode.delete(nodeId)
        void core.agents.disconnected(nodeId).catch(() => {})
      }
    })
  })

  const unsubscribe = bus.subscribe((c) => {
    if (c.kind === 'node-desired') byNode.get(c.nodeId)?.push()
    else if (c.kind === 'agent-command') byNode.get(c.nodeId)?.deliver()
  })

  return {
    handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer) {
      wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req))
    },
    get connected() {
      return byNode.size
    },
    counters,
    async close() {
      unsubscribe()
      for (const c of wss.clients) c.close(1001, 'server shutting down')
      await new Promise<void>((r) => wss.close(() => r()))
      await Promise.all(inFlight)
    },
  }
}
