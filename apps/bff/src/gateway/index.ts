import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { ChangeBus, ControlPlane } from '@alveary/core'
import { CloseCode, MAX_FRAME_BYTES } from '@alveary/core/protocol'
import type { Logger } from 'pino'
import { WebSocketServer } from 'ws'
import { createAdmission, refuseUpgrade } from './admission'
import { serveAgentConnection, type AgentConnection, type ConnectionLimits } from './connection'
import { createGatewayCounters } from './counters'

export interface AgentGatewayDeps {
  core: ControlPlane
  bus: ChangeBus
  log: Logger
  heartbeatIntervalMs: number
  helloTimeoutMs: number
  maxPendingPerIp: number
}

/** Per-connection backlog: a few 1 MiB frames, or many small ones. */
const LIMITS: Omit<ConnectionLimits, 'helloTimeoutMs'> = { pauseAtFrames: 64, pauseAtBytes: 2 * MAX_FRAME_BYTES, closeAtFrames: 1024, closeAtBytes: 16 * MAX_FRAME_BYTES }

/**
 * The /agent WebSocket endpoint. One connection per node; the first frame must be a valid
 * hello within the hello timeout. Desired state is pushed whenever the node's generation
 * changes. Files: admission (who may open a socket), connection (one socket's frames),
 * push (desired state), commands (one-shot commands of moves), counters (for /metrics).
 */
export function createAgentGateway({ core, bus, log, heartbeatIntervalMs, helloTimeoutMs, maxPendingPerIp }: AgentGatewayDeps) {
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES })
  const counters = createGatewayCounters()
  const admission = createAdmission({ maxPendingPerIp })
  const byNode = new Map<string, AgentConnection>()
  const all = new Set<AgentConnection>()

  const unsubscribe = bus.subscribe((c) => {
    if (c.kind === 'node-desired') byNode.get(c.nodeId)?.push()
    else if (c.kind === 'agent-command') byNode.get(c.nodeId)?.deliver()
    else if (c.kind === 'node-revoked') byNode.get(c.nodeId)?.close(CloseCode.unauthorized, 'node credential revoked: re-keyed by an operator')
  })

  return {
    handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer) {
      const remote = req.socket.remoteAddress ?? 'unknown'
      const slot = admission.enter(remote)
      if (!slot.ok) {
        counters.reject(slot.reason)
        return refuseUpgrade(socket, slot.status, slot.retryAfterMs)
      }
      socket.once('close', slot.release)
      wss.handleUpgrade(req, socket, head, (ws) => {
        const conn = serveAgentConnection(ws, {
          core,
          log,
          counters,
          limits: { ...LIMITS, helloTimeoutMs },
          heartbeatIntervalMs,
          remote,
          onWelcome(c) {
            slot.release()
            // A node has one connection: a newer one replaces the older.
            const old = byNode.get(c.nodeId!)
            if (old && old !== c) old.close(CloseCode.replaced, 'replaced by a newer connection')
            byNode.set(c.nodeId!, c)
          },
          onClose(c) {
            slot.release()
            void c.idle().then(() => all.delete(c))
            if (c.nodeId && byNode.get(c.nodeId) === c) {
              byNode.delete(c.nodeId)
              void core.agents.disconnected(c.nodeId).catch((err) => log.warn({ nodeId: c.nodeId, err: err.message }, 'recording a disconnect failed'))
            }
          },
        })
        all.add(conn)
      })
    },
    get connected() {
      return byNode.size
    },
    get pending() {
      return admission.pending
    },
    counters,
    async close() {
      unsubscribe()
      for (const c of wss.clients) c.close(1001, 'server shutting down')
      await new Promise<void>((r) => wss.close(() => r()))
      await Promise.all([...all].map((c) => c.idle()))
    },
  }
}
