import type { AddressInfo } from 'node:net'
import { WebSocketServer, type WebSocket } from 'ws'
import { ZAgentMessage, type TAgentMessage } from '@alveary/core/protocol'
import { waitFor } from './helpers'

/** One agent connection as the fake server sees it: every frame validated against the protocol. */
export class Peer {
  readonly frames: TAgentMessage[] = []
  readonly invalid: string[] = []
  closed = false
  constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const parsed = ZAgentMessage.safeParse(JSON.parse(data.toString()))
      if (parsed.success) this.frames.push(parsed.data)
      else this.invalid.push(data.toString())
    })
    ws.on('close', () => (this.closed = true))
  }
  send(frame: unknown) {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame))
  }
  /** Waits for the next frame of a type (after `from`) matching `pred`. */
  async next<T extends TAgentMessage['type']>(type: T, pred: (f: Extract<TAgentMessage, { type: T }>) => boolean = () => true, from = 0, timeoutMs = 5000) {
    return waitFor(
      `${type} frame`,
      () => this.frames.slice(from).find((f): f is Extract<TAgentMessage, { type: T }> => f.type === type && pred(f as Extract<TAgentMessage, { type: T }>)),
      timeoutMs,
    )
  }
  /** Frames of one type received so far. */
  all<T extends TAgentMessage['type']>(type: T): Array<Extract<TAgentMessage, { type: T }>> {
    return this.frames.filter((f): f is Extract<TAgentMessage, { type: T }> => f.type === type)
  }
}

export async function fakeServer(cleanups: Array<() => Promise<void> | void>) {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', path: '/agent' })
  await new Promise<void>((r) => wss.once('listening', () => r()))
  const peers: Peer[] = []
  wss.on('connection', (ws) => peers.push(new Peer(ws)))
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        for (const c of wss.clients) c.terminate()
        wss.close(() => r())
      }),
  )
  const port = (wss.address() as AddressInfo).port
  return { url: `http://127.0.0.1:${port}`, peers, peer: (i: number) => waitFor(`connection #${i + 1}`, () => peers[i]) }
}
