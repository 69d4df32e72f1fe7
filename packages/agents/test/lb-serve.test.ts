import http from 'node:http'
import pino from 'pino'
import type { TDesiredLb } from '@alveary/core/protocol'
import { afterEach, describe, expect, it } from 'vitest'
import { createBuiltinPlane } from '../src/lb/builtin/plane'
import { createLbServer, type LbReportFrame } from '../src/lb/serve'
import { freeListenerPort } from './helpers'

// The feed between desired states and a data plane (the built-in one: real listeners on loopback).

let stop: (() => Promise<void>) | null = null
afterEach(async () => {
  await stop?.()
  stop = null
})

/** One HTTP listener in front of a backend with no servers yet. */
const emptyLb = (port: number, id: string): TDesiredLb => ({
  id,
  name: 'web',
  algorithm: 'roundrobin',
  stickySeconds: null,
  drainSeconds: 0,
  listeners: [{ port, protocol: 'http', routes: [{ host: null, pathPrefix: null, backend: 'all' }] }],
  backends: [{ name: 'all', servers: [] }],
})

describe('load-balancer feed', () => {
  it('tries a load balancer in error again by itself: served once its port is free', async () => {
    const port = await freeListenerPort()
    const blocker = http.createServer()
    await new Promise<void>((r) => blocker.listen(port, '0.0.0.0', r))
    const frames: LbReportFrame[] = []
    const server = createLbServer({ plane: createBuiltinPlane({ logger: pino({ level: 'silent' }) }), send: (f) => frames.push(f), logger: pino({ level: 'silent' }), retryMs: 200 })
    stop = () => server.stop()
    const desired = emptyLb(port, '00000000-0000-4000-8000-000000000001')
    server.apply([desired], 7)
    const deadline = Date.now() + 20_000
    while (!frames.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    expect(frames[0]).toEqual({ generation: 7, reports: [{ id: desired.id, state: 'error', message: `port ${port} is in use on this node` }] })
    await new Promise<void>((r) => blocker.close(() => r()))
    while (frames.at(-1)?.reports[0]?.state !== 'active' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    expect(frames.at(-1)).toEqual({ generation: 7, reports: [{ id: desired.id, state: 'active', message: null }] })
    // Served now: the listener answers (503: its backend has no server yet).
    const status = await new Promise<number>((resolve, reject) => http.get({ host: '127.0.0.1', port, agent: false }, (res) => (res.resume(), resolve(res.statusCode ?? 0))).on('error', reject))
    expect(status).toBe(503)
  }, 30_000)

  it('stays stopped: desired states that arrive after stop() (an agent exiting) start nothing', async () => {
    const port = await freeListenerPort()
    const frames: LbReportFrame[] = []
    const server = createLbServer({ plane: createBuiltinPlane({ logger: pino({ level: 'silent' }) }), send: (f) => frames.push(f), logger: pino({ level: 'silent' }), retryMs: 50 })
    stop = () => server.stop()
    const desired = emptyLb(port, '00000000-0000-4000-8000-000000000002')
    await server.stop()
    server.apply([desired], 8)
    server.reapply()
    // Long enough for an apply (and a retry) to have run had one been started.
    await new Promise((r) => setTimeout(r, 500))
    expect(frames).toEqual([])
    await expect(new Promise((resolve, reject) => http.get({ host: '127.0.0.1', port, agent: false }, resolve).on('error', reject))).rejects.toThrow(/ECONNREFUSED/)
  })
})
