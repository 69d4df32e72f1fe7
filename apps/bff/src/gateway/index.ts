import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { CoreError, createBatchLoader, type ChangeBus, type ControlPlane } from '@alveary/core'
import { CloseCode, MAX_FRAME_BYTES } from '@alveary/core/protocol'
import type { Logger } from 'pino'
import { WebSocketServer } from 'ws'
import { createAdmission, createHelloGate, refuseUpgrade } from './admission'
import { serveAgentConnection, type AgentConnection, type ConnectionLimits } from './connection'
import { createGatewayCounters } from './counters'

export interface AgentGatewayDeps {
  core: ControlPlane
  bus: ChangeBus
  log: Logger
  heartbeatIntervalMs: number
  helloTimeoutMs: number
  maxPendingPerIp: number
  /** Agents welcomed at once, and how many more may wait for it (see createHelloGate). */
  maxConcurrentHellos: number
  helloQueue: number
}

/** Per-connection backlog: a few 1 MiB frames, or many small ones. */
const LIMITS: Omit<ConnectionLimits, 'helloTimeoutMs'> = { pauseAtFrames: 64, pauseAtBytes: 2 * MAX_FRAME_BYTES, closeAtFrames: 1024, closeAtBytes: 16 * MAX_FRAME_BYTES }

/**
 * The /agent WebSocket endpoint. One connection per node; the first frame must be a valid
 * hello within the hello timeout. Desired state is pushed whenever the node's generation
 * changes. Files: admission (who may open a socket, how many are welcomed at once),
 * connection (one socket's frames), push (desired state, read in batches with other
 * nodes' by core's batch loader), commands (one-shot commands of moves), counters (for /metrics).
 */
export function createAgentGateway({ core, bus, log, heartbeatIntervalMs, helloTimeoutMs, maxPendingPerIp, maxConcurrentHellos, helloQueue }: AgentGatewayDeps) {
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES })
  const counters = createGatewayCounters()
  const admission = createAdmission({ maxPendingPerIp })
  // After a restart the whole fleet comes back within seconds: welcome it at the pace the store allows.
  const hellos = createHelloGate({ concurrency: maxConcurrentHellos, queue: helloQueue })
  const desired = createBatchLoader({
    loadMany: (ids: string[]) => core.agents.desiredForMany(ids),
    missing: () => new CoreError('NOT_FOUND', 'Node not found'),
    maxBatch: 500,
    concurrency: 2,
  })
  const byNode = new Map<string, AgentConnection>()
  const all = new Set<AgentConnection>()
  let closing = false

  // A peer silent for three heartbeats is gone (half-open TCP): drop it so its node is free.
  // Only judged when this process itself kept time: after a stall of its own event loop, the
  // frames that arrived meanwhile have not been read yet, and every peer would look silent.
  const silentMs = 3 * heartbeatIntervalMs
  let lastSweep = performance.now()
  const sweep = setInterval(() => {
    const now = performance.now()
    const stalled = now - lastSweep > 1.5 * heartbeatIntervalMs
    lastSweep = now
    if (stalled) return
    for (const c of byNode.values()) if (now - c.lastHeardAt > silentMs) c.close(CloseCode.replaced, `silent for ${Math.round((now - c.lastHeardAt) / 1000)} s`)
  }, heartbeatIntervalMs)
  sweep.unref()

  const releaseNode = async (nodeId: string, sessionId: string, attempt: number): Promise<void> => {
    try {
      await core.agents.disconnected(nodeId, sessionId)
    } catch (err) {
      if (closing || attempt >= 8) return void log.warn({ nodeId, err: (err as Error).message }, 'recording a disconnect failed')
      await new Promise((r) => setTimeout(r, Math.min(30_000, 500 * 2 ** attempt)).unref())
      return releaseNode(nodeId, sessionId, attempt + 1)
    }
  }

  /** After the bus was down: push every desired state that changed meanwhile (a lost node-desired). */
  const resyncAgents = async () => {
    const conns = [...byNode.values()]
    if (!conns.length) return
    const generations = await core.agents.generations(conns.map((c) => c.nodeId!)).catch((err: Error) => {
      log.warn({ err: err.message }, 'reading desired generations failed; pushing to every agent')
      return new Map<string, number>()
    })
    for (const c of conns) if (c.sentGeneration === null || generations.get(c.nodeId!) !== c.sentGeneration) c.push()
    // Commands announced while the hints were lost wait in the store: deliver them too.
    for (const c of conns) c.deliver()
  }

  const unsubscribe = bus.subscribe((c) => {
    if (c.kind === 'resync') void resyncAgents()
    else if (c.kind === 'node-desired') byNode.get(c.nodeId)?.push()
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
      const gate = hellos.enter()
      if (!gate.ok) {
        slot.release()
        counters.reject(gate.reason)
        return refuseUpgrade(socket, gate.status, gate.retryAfterMs)
      }
      socket.once('close', slot.release)
      socket.once('close', gate.ticket.release)
      wss.handleUpgrade(req, socket, head, (ws) => {
        const conn = serveAgentConnection(ws, {
          core,
          log,
          counters,
          limits: { ...LIMITS, helloTimeoutMs },
          heartbeatIntervalMs,
          remote,
          hello: gate.ticket,
          loadDesired: desired.load,
          onWelcome(c) {
            slot.release()
            // The newcomer holds the node's session now: a local older connection was silent, or the same agent run reconnecting.
            const old = byNode.get(c.nodeId!)
            if (old && old !== c) old.close(CloseCode.replaced, 'a newer connection of this node took over')
            byNode.set(c.nodeId!, c)
          },
          onClose(c) {
            slot.release()
            gate.ticket.release()
            void c.idle().then(() => all.delete(c))
            if (!c.nodeId) return
            if (byNode.get(c.nodeId) === c) byNode.delete(c.nodeId)
            // Frees the node only if this connection still held it; retried while the store is away.
            void releaseNode(c.nodeId, c.sessionId, 0)
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
    /** Connections being welcomed or waiting for it. */
    get welcoming() {
      return hellos.held
    },
    counters,
    async close() {
      closing = true
      clearInterval(sweep)
      unsubscribe()
      for (const c of wss.clients) c.close(1001, 'server shutting down')
      await new Promise<void>((r) => wss.close(() => r()))
      await Promise.all([...all].map((c) => c.idle()))
    },
  }
}
