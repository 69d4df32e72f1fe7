/** One health check attempt: an HTTP request or a TCP connection, with a deadline. */
import http from 'node:http'
import net from 'node:net'
import type { TProbe } from '@alveary/core/schemas'

export interface ProbeTarget {
  host: string
  port: number
}

/** null when healthy, else why not ("status 500", "connection refused", "timed out after 2s"). */
export function runProbe(probe: TProbe, target: ProbeTarget): Promise<string | null> {
  const timeoutMs = probe.timeoutSeconds * 1000
  return new Promise((resolve) => {
    let done = false
    const finish = (reason: string | null) => {
      if (done) return
      done = true
      clearTimeout(timer)
      resolve(reason)
    }
    const timer = setTimeout(() => {
      finish(`timed out after ${probe.timeoutSeconds}s`)
      cleanup()
    }, timeoutMs)
    let cleanup = () => {}
    if (probe.type === 'tcp') {
      const sock = net.connect({ host: target.host, port: target.port })
      cleanup = () => sock.destroy()
      sock.once('connect', () => {
        finish(null)
        sock.destroy()
      })
      sock.once('error', (err) => finish(describe(err)))
      return
    }
    const req = http.get({ host: target.host, port: target.port, path: probe.path, agent: false, headers: { 'user-agent': 'alveary-health/1', connection: 'close' } }, (res) => {
      res.resume()
      finish(res.statusCode === probe.expectStatus ? null : `status ${res.statusCode}, expected ${probe.expectStatus}`)
    })
    cleanup = () => req.destroy()
    req.once('error', (err) => finish(describe(err)))
  })
}

function describe(err: NodeJS.ErrnoException): string {
  if (err.code === 'ECONNREFUSED') return 'connection refused'
  if (err.code === 'ECONNRESET') return 'connection reset'
  return err.message.slice(0, 200)
}
