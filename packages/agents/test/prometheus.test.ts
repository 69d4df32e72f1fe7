import { request } from 'node:http'
import { afterAll, describe, expect, it } from 'vitest'
import { createPrometheus } from '../src/prometheus'
import { testLogger } from './helpers'

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path }, (res) => {
      let body = ''
      res.on('data', (d) => (body += d))
      res.on('end', () => resolve({ status: res.statusCode!, body }))
    })
    req.on('error', reject)
    req.end()
  })
}

describe('the agent’s Prometheus metrics', () => {
  const p = createPrometheus()
  afterAll(() => p.close())

  it('counts DNS queries by network, type, transport and result, and their latency (dropped ones have none)', async () => {
    p.observeDns({ network: 'n1', type: 'A', transport: 'udp', result: 'answered', seconds: 0.0004 })
    p.observeDns({ network: 'n1', type: 'A', transport: 'udp', result: 'answered', seconds: 0.002 })
    p.observeDns({ network: 'n1', type: 'AAAA', transport: 'tcp', result: 'nxdomain', seconds: 0.001 })
    p.observeDns({ network: 'n2', type: 'A', transport: 'udp', result: 'dropped', seconds: 0 })
    const port = await p.listen('127.0.0.1:0', testLogger)
    const { status, body } = await get(port, '/metrics')
    expect(status).toBe(200)
    expect(body).toContain('alveary_agent_dns_queries_total{network="n1",type="A",transport="udp",result="answered"} 2')
    expect(body).toContain('alveary_agent_dns_queries_total{network="n1",type="AAAA",transport="tcp",result="nxdomain"} 1')
    expect(body).toContain('alveary_agent_dns_queries_total{network="n2",type="A",transport="udp",result="dropped"} 1')
    expect(body).toContain('alveary_agent_dns_query_duration_seconds_bucket{le="0.0005",transport="udp",result="answered"} 1')
    expect(body).toContain('alveary_agent_dns_query_duration_seconds_count{transport="udp",result="answered"} 2')
    expect(body).not.toMatch(/alveary_agent_dns_query_duration_seconds_count\{[^}]*result="dropped"/)
    expect(body).toContain('process_cpu_seconds_total')
    expect((await get(port, '/other')).status).toBe(404)
  })
})
