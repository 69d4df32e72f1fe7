/**
 * The agent's own Prometheus metrics (prom-client), served at GET /metrics when the agent is
 * given --metrics-listen. Per-instance usage goes to the control plane instead (metrics.ts);
 * this is what only the node sees: today its DNS responder's queries.
 */
import { createServer, type Server } from 'node:http'
import type { Logger } from 'pino'
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client'
import type { DnsQueryEvent } from './network/dns/responder'

export function createPrometheus() {
  // One registry per agent (tests run several agents in one process): never prom-client's global one.
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  const registers = [registry]
  const dnsQueries = new Counter({
    name: 'alveary_agent_dns_queries_total',
    help: 'Queries to the tenant-network DNS responder, by network id, question type, transport and result (answered, nxdomain, relayed, servfail, refused, dropped: over the rate, formerr).',
    labelNames: ['network', 'type', 'transport', 'result'] as const,
    registers,
  })
  const dnsDuration = new Histogram({
    name: 'alveary_agent_dns_query_duration_seconds',
    help: 'Time from a query reaching the DNS responder to its answer (relayed ones include the upstream resolver), by transport and result.',
    labelNames: ['transport', 'result'] as const,
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 3],
    registers,
  })
  let server: Server | null = null

  return {
    registry,
    observeDns(e: DnsQueryEvent): void {
      dnsQueries.inc({ network: e.network, type: e.type, transport: e.transport, result: e.result })
      // Dropped queries get no answer: no latency.
      if (e.result !== 'dropped') dnsDuration.observe({ transport: e.transport, result: e.result }, e.seconds)
    },
    /** Serves GET /metrics on `host:port`; resolves with the port once it listens. */
    async listen(hostPort: string, log: Logger): Promise<number> {
      const at = hostPort.lastIndexOf(':')
      const s = createServer((req, res) => {
        if (req.method !== 'GET' || req.url !== '/metrics') return void res.writeHead(404).end()
        registry.metrics().then(
          (body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body),
          (err) => (log.warn({ err }, 'metrics: cannot render'), res.writeHead(500).end()),
        )
      })
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject)
        s.listen(Number(hostPort.slice(at + 1)), hostPort.slice(0, at), () => resolve())
      })
      server = s
      const port = (s.address() as { port: number }).port
      log.info({ address: hostPort, port }, 'metrics: serving /metrics')
      return port
    },
    async close(): Promise<void> {
      const s = server
      server = null
      if (s) await new Promise<void>((r) => s.close(() => r()))
    },
  }
}
export type Prometheus = ReturnType<typeof createPrometheus>
