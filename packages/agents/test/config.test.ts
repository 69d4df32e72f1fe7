import { describe, expect, it } from 'vitest'
import { agentEndpoint, normalizeServerUrl, parseConfig } from '../src/config'

describe('config', () => {
  it('converts http(s) URLs and appends /agent', () => {
    expect(normalizeServerUrl('http://127.0.0.1:4000/')).toBe('ws://127.0.0.1:4000')
    expect(normalizeServerUrl('https://cp.example.com/base')).toBe('wss://cp.example.com/base')
    expect(agentEndpoint('ws://127.0.0.1:4000')).toBe('ws://127.0.0.1:4000/agent')
    expect(agentEndpoint('wss://cp.example.com/base')).toBe('wss://cp.example.com/base/agent')
    expect(agentEndpoint('ws://h/agent')).toBe('ws://h/agent')
  })

  it('reads env, lets flags win, and fills defaults', () => {
    const env = { ALVEARY_SERVER: 'https://cp.example.com', ALVEARY_NODE_NAME: 'from-env', ALVEARY_NODE_LABELS: 'zone=a, disk=ssd', ALVEARY_NODE_CPU_MILLIS: '1500' }
    const r = parseConfig(['--name', 'from-flag', '--cpu-millis', '2500', '--stop-on-exit'], env)
    expect(r.kind).toBe('config')
    if (r.kind !== 'config') return
    expect(r.config).toMatchObject({
      server: 'wss://cp.example.com',
      name: 'from-flag',
      labels: { zone: 'a', disk: 'ssd' },
      cpuMillis: 2500,
      address: '127.0.0.1',
      stopOnExit: true,
      logLevel: 'info',
    })
    expect(r.config.dataDir).toMatch(/\/\.data\/agent-from-flag$/)
    expect(r.config.memoryMb).toBeGreaterThan(0)
  })

  it('reports bad values clearly, per flag', () => {
    const r = parseConfig(['--name', 'Not_A_Name', '--memory-mb', '12x', '--labels', 'oops', '--server', 'ftp://x'], {})
    expect(r.kind).toBe('error')
    if (r.kind !== 'error') return
    expect(r.message).toContain('--name: node names are lowercase DNS labels')
    expect(r.message).toContain('--memory-mb: must be a whole number')
    expect(r.message).toContain('--labels: label "oops" is not key=value')
    expect(r.message).toContain('--server: not a ws(s):// or http(s):// URL')
    expect(parseConfig(['--nope'], {})).toMatchObject({ kind: 'error', message: expect.stringContaining("Unknown option '--nope'") })
    expect(parseConfig(['--help'], {})).toEqual({ kind: 'help' })
  })

  it('serves its own metrics only when given --metrics-listen host:port', () => {
    expect(parseConfig(['--name', 'n'], {})).toMatchObject({ kind: 'config', config: { metricsListen: undefined } })
    expect(parseConfig(['--name', 'n'], { ALVEARY_AGENT_METRICS_LISTEN: '127.0.0.1:9464' })).toMatchObject({ kind: 'config', config: { metricsListen: '127.0.0.1:9464' } })
    for (const bad of ['9464', '127.0.0.1', 'h:99999'])
      expect(parseConfig(['--name', 'n', '--metrics-listen', bad], {})).toMatchObject({ kind: 'error', message: expect.stringContaining('--metrics-listen:') })
  })
})
