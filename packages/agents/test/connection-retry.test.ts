import http from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import { PROTOCOL_VERSION } from '@alveary/core/protocol'
import pino from 'pino'
import { WebSocketServer } from 'ws'
import { afterEach, describe, expect, it } from 'vitest'
import { createConnection, type Connection } from '../src/connection'
import { MAX_HINT_MS } from '../src/reconnect-delay'
import { waitFor } from './helpers'

/**
 * A server that answers each upgrade as its script says: refuse with headers, or accept
 * (and maybe close at once with a reason). Records when every attempt arrived.
 */
type Answer = { refuse: Record<string, string> } | { accept: true; close?: { code: number; reason: string } }
const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

async function scriptedServer(answer: (attempt: number) => Answer) {
  const attempts: number[] = []
  const wss = new WebSocketServer({ noServer: true })
  const server = http.createServer()
  const sockets = new Set<Duplex>()
  server.on('upgrade', (req, socket: Duplex, head) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
    const a = answer(attempts.length)
    attempts.push(performance.now())
    if ('refuse' in a) {
      const headers = Object.entries(a.refuse).map(([k, v]) => `${k}: ${v}\r\n`).join('')
      return void socket.end(`HTTP/1.1 503 Service Unavailable\r\n${headers}Connection: close\r\nContent-Length: 0\r\n\r\n`)
    }
    wss.handleUpgrade(req, socket, head, (ws) => a.close && ws.close(a.close.code, a.close.reason))
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy()
        wss.close()
        server.close(() => r())
      }),
  )
  return { url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}/agent`, attempts }
}

function connect(url: string, hints: (number | null)[] = []): Connection {
  const conn = createConnection({
    url,
    logger: pino({ level: 'silent' }),
    hello: () => ({ type: 'hello', protocolVersion: PROTOCOL_VERSION, auth: { joinToken: 'jt_test' }, node: { name: 'n1', address: '198.18.0.1', labels: {}, cpuMillis: 1000, memoryMb: 1024, drivers: ['process'], agentVersion: 'test' } }) as never,
    onMessage: () => {},
    onClose: (_code, _reason, hintMs) => {
      hints.push(hintMs)
      return 'reconnect'
    },
  })
  cleanups.push(() => conn.close())
  conn.start()
  return conn
}

describe('an agent told when to come back', () => {
  it('reconnects when a refused upgrade said, not before (its own backoff would have come within a quarter second)', async () => {
    const srv = await scriptedServer((n) => (n === 0 ? { refuse: { 'Retry-After': '2', 'X-Retry-After-Ms': '1200' } } : { accept: true }))
    const hints: (number | null)[] = []
    connect(srv.url, hints)
    await waitFor('the second attempt', () => srv.attempts.length >= 2, 10_000)
    expect(hints[0]).toBe(1200)
    const gap = srv.attempts[1]! - srv.attempts[0]!
    expect(gap).toBeGreaterThanOrEqual(1200 - 5)
    // At most a tenth of jitter; the rest is this machine's scheduling.
    expect(gap).toBeLessThan(1200 + 120 + 2_000)
  })

  it('reconnects when a close reason said', async () => {
    const srv = await scriptedServer((n) => (n === 0 ? { accept: true, close: { code: 1013, reason: 'busy (retry in 900 ms)' } } : { accept: true }))
    const hints: (number | null)[] = []
    connect(srv.url, hints)
    await waitFor('the second attempt', () => srv.attempts.length >= 2, 10_000)
    expect(hints[0]).toBe(900)
    expect(srv.attempts[1]! - srv.attempts[0]!).toBeGreaterThanOrEqual(900 - 5)
  })

  it('does not spin when a server says "now" again and again: the wait doubles from a quarter second', async () => {
    const srv = await scriptedServer(() => ({ refuse: { 'X-Retry-After-Ms': '0', 'Retry-After': '0' } }))
    connect(srv.url)
    await waitFor('four attempts', () => srv.attempts.length >= 4, 10_000)
    const gaps = srv.attempts.slice(1, 4).map((t, i) => t - srv.attempts[i]!)
    ;[250, 500, 1000].forEach((floor, i) => expect(gaps[i]).toBeGreaterThanOrEqual(floor - 5))
  })

  it('waits at most a minute however long a server says, and ignores a hint that is not a number of ms', async () => {
    const srv = await scriptedServer((n) => (n === 0 ? { refuse: { 'X-Retry-After-Ms': '86400000' } } : { accept: true }))
    const hints: (number | null)[] = []
    connect(srv.url, hints)
    await waitFor('the refusal', () => hints.length >= 1, 10_000)
    expect(hints[0]).toBe(MAX_HINT_MS)

    const bad = await scriptedServer((n) => (n === 0 ? { refuse: { 'X-Retry-After-Ms': '1e9', 'Retry-After': '-1' } } : { accept: true }))
    const badHints: (number | null)[] = []
    connect(bad.url, badHints)
    // No hint: the agent's own backoff (under a quarter second for a first retry).
    await waitFor('the second attempt', () => bad.attempts.length >= 2, 10_000)
    expect(badHints[0]).toBeNull()
  })
})
