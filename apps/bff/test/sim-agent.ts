import { randomUUID } from 'node:crypto'
import { PROTOCOL_VERSION, type TServerMessage } from '@alveary/core/protocol'
import WebSocket from 'ws'
import { waitFor } from './harness'

export const simNodeInfo = (name: string) => ({ name, address: '127.0.0.1', labels: {}, cpuMillis: 2000, memoryMb: 2048, drivers: ['process'], agentVersion: 'test' })

/**
 * A hand-driven agent over a real WebSocket: sends exactly the frames a test gives it and
 * records what the server answers, including how and why the server closed.
 */
export interface SimAgent {
  ws: WebSocket
  messages: TServerMessage[]
  closed: { code: number; reason: string } | null
  /** The HTTP status when the upgrade was refused. */
  refused: { status: number; retryAfterMs: number | null } | null
  nodeId: string | null
  credential: string | null
  /** The runId of the last hello sent (reconnecting with it is "the same agent"). */
  runId: string | null
  send(frame: unknown): void
  heartbeat(cpuUsedMillis: number, memoryUsedMb?: number, appliedGeneration?: number): void
  waitClosed(timeoutMs?: number): Promise<{ code: number; reason: string }>
  close(): void
}

export async function openSim(baseUrl: string, opts: { waitOpen?: boolean; unmasked?: boolean } = {}): Promise<SimAgent> {
  // Unmasked (an all-zero mask) lets one test process send as fast as a real flood would.
  const ws = new WebSocket(`${baseUrl.replace('http', 'ws')}/agent`, opts.unmasked ? { generateMask: (m) => void m.fill(0) } : {})
  const sim: SimAgent = {
    ws,
    messages: [],
    closed: null,
    refused: null,
    nodeId: null,
    credential: null,
    runId: null,
    send: (f) => {
      if (typeof f === 'object' && f && (f as { type?: string }).type === 'hello') sim.runId = (f as { runId?: string }).runId ?? null
      ws.send(typeof f === 'string' ? f : JSON.stringify(f))
    },
    heartbeat: (cpuUsedMillis, memoryUsedMb = 1, appliedGeneration = 0) => sim.send({ type: 'heartbeat', cpuUsedMillis, memoryUsedMb, appliedGeneration }),
    waitClosed: (timeoutMs = 10_000) => waitFor('the server to close the connection', async () => sim.closed, timeoutMs, 20),
    close: () => ws.terminate(),
  }
  ws.on('message', (d) => {
    const m = JSON.parse(d.toString()) as TServerMessage
    sim.messages.push(m)
    if (m.type === 'welcome') {
      sim.nodeId = m.nodeId
      sim.credential = m.credential ?? sim.credential
    }
  })
  ws.on('unexpected-response', (_req, res) => {
    const ms = res.headers['x-retry-after-ms']
    sim.refused = { status: res.statusCode ?? 0, retryAfterMs: typeof ms === 'string' ? Number(ms) : null }
    sim.closed = { code: 1006, reason: `HTTP ${res.statusCode}` }
    res.resume()
    ws.terminate()
  })
  ws.on('close', (code, reason) => (sim.closed ??= { code, reason: reason.toString() }))
  ws.on('error', () => {})
  if (opts.waitOpen !== false) {
    await waitFor('socket open', async () => ws.readyState === WebSocket.OPEN || sim.closed, 10_000, 10)
  }
  return sim
}

export const helloFrame = (auth: object, name: string, extra: object = {}) => ({ type: 'hello', protocolVersion: PROTOCOL_VERSION, auth, node: simNodeInfo(name), runId: randomUUID(), ...extra })

/** Opens a socket and joins (or reconnects with a credential); resolves once welcomed. */
export async function joinSim(baseUrl: string, auth: object, name: string, opts: { unmasked?: boolean; runId?: string | null } = {}): Promise<SimAgent> {
  const sim = await openSim(baseUrl, opts)
  sim.send(helloFrame(auth, name, opts.runId ? { runId: opts.runId } : {}))
  await waitFor(`welcome for ${name}`, async () => sim.nodeId || (sim.closed && Promise.reject(new Error(`closed ${sim.closed.code} ${sim.closed.reason}`))), 15_000, 10)
  return sim
}
