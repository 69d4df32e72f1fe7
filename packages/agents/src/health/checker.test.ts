import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { ZProbe } from '@alveary/core/schemas'
import { nextCheckMs, startChecker, type Checker } from './checker'

const probe = ZProbe.parse({ type: 'http', path: '/healthz', intervalSeconds: 5, timeoutSeconds: 1 })

describe('health checker', () => {
  let checker: Checker | null = null
  let server: http.Server | null = null
  afterEach(() => {
    checker?.stop()
    server?.close()
  })

  it('retries readiness at a doubling pace until it first passes, then at its interval; liveness always at its interval', () => {
    expect([1, 2, 3, 4].map((n) => nextCheckMs({ kind: 'readiness', probe }, false, n))).toEqual([50, 100, 200, 400])
    expect(nextCheckMs({ kind: 'readiness', probe }, false, 12)).toBe(5000)
    expect(nextCheckMs({ kind: 'readiness', probe }, true, 1)).toBe(5000)
    expect(nextCheckMs({ kind: 'liveness', probe }, false, 1)).toBe(5000)
  })

  it('an instance that is not ready at its first check is ready well before the 5 s interval', async () => {
    // Not ready at the first request (still loading), ready from the second on.
    let requests = 0
    server = http.createServer((_req, res) => {
      res.statusCode = ++requests === 1 ? 503 : 200
      res.end()
    })
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r))
    const port = (server.address() as AddressInfo).port
    let readyAt = 0
    const startedAt = Date.now()
    checker = startChecker([{ kind: 'readiness', portName: 'http', probe, target: { host: '127.0.0.1', port } }], {
      onChange: () => (checker?.health().ready ? (readyAt = Date.now()) : 0),
      onLivenessFailed() {},
    })
    const deadline = Date.now() + 4000
    while (!readyAt && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    expect(requests).toBeGreaterThanOrEqual(2)
    expect(readyAt - startedAt).toBeLessThan(1500)
  })
})
