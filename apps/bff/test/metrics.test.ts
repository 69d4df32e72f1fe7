import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import type { Agent } from '@alveary/agents'
import { CloseCode } from '@alveary/core/protocol'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { createMetrics } from '../src/metrics'
import { addMember, callerFor, OPERATOR, startInProcessAgent, startTestBff, waitFor, type TestBff } from './harness'

/** One metric family of the Prometheus text format (version 0.0.4). */
interface Family {
  help: string | null
  type: string | null
  samples: { name: string; labels: Record<string, string>; value: number }[]
}

/** A strict parser: every line must be a comment, HELP, TYPE or a well-formed sample. */
function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>()
  const family = (name: string) => {
    let f = families.get(name)
    if (!f) families.set(name, (f = { help: null, type: null, samples: [] }))
    return f
  }
  const base = (name: string) => name.replace(/_(bucket|sum|count)$/, '')
  for (const line of text.split('\n')) {
    if (!line) continue
    let m = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line)
    if (m) {
      family(m[1]!).help = m[2]!
      continue
    }
    m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line)
    if (m) {
      family(m[1]!).type = m[2]!
      continue
    }
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (!m) throw new Error(`not a valid exposition line: ${line}`)
    const labels: Record<string, string> = {}
    const labelRe = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(?:,|$)/y
    const body = m[2] ?? ''
    while (labelRe.lastIndex < body.length) {
      const l = labelRe.exec(body)
      if (!l) throw new Error(`bad labels in: ${line}`)
      labels[l[1]!] = l[2]!.replace(/\\(["\\n])/g, (_, c: string) => (c === 'n' ? '\n' : c))
    }
    // Go's ParseFloat, which Prometheus uses: also NaN and ±Inf in any case.
    const raw = m[3]!.toLowerCase()
    const value = raw === 'nan' ? NaN : /^[+-]?inf$/.test(raw) ? (raw.startsWith('-') ? -Infinity : Infinity) : Number(raw)
    if (Number.isNaN(value) && raw !== 'nan') throw new Error(`bad value in: ${line}`)
    const name = m[1]!
    const f = families.get(name) ?? families.get(base(name)) ?? family(name)
    f.samples.push({ name, labels, value })
  }
  return families
}

let bff: TestBff
let agent: Agent
let dataDir: string

const trpcPost = (proc: string, input: unknown) =>
  fetch(`${bff.url}/trpc/${proc}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ json: input }) })

const scrape = async () => {
  const res = await fetch(`${bff.url}/metrics`)
  expect(res.status).toBe(200)
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
  return parseExposition(await res.text())
}

beforeAll(async () => {
  bff = await startTestBff()
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'alveary-metrics-'))
  const op = await callerFor(bff, OPERATOR.email, OPERATOR.password)
  const joinToken = (await op.joinTokens.create({ description: 'metrics', ttlHours: 1 })).token
  agent = await startInProcessAgent({ server: bff.url, joinToken, name: 'metrics-node', dataDir })
  await waitFor('node ready', async () => (await op.nodes.list()).find((n) => n.name === 'metrics-node' && n.state === 'ready'))
})
afterAll(async () => {
  await agent?.shutdown({ stopInstances: true })
  await bff?.stop()
  await bff?.dropDatabase()
  if (dataDir) await rm(dataDir, { recursive: true, force: true })
})

describe('/metrics of a running BFF', () => {
  it('is valid Prometheus text with HELP and TYPE for every family, and counts what happened', async () => {
    // API calls over HTTP: one that succeeds, one that fails.
    expect((await trpcPost('auth.login', OPERATOR)).status).toBe(200)
    expect((await trpcPost('auth.login', { email: OPERATOR.email, password: 'wrong-password' })).status).toBe(401)
    // A rejected agent frame.
    const closed = await new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(`${bff.url.replace('http', 'ws')}/agent`)
      ws.on('open', () => ws.send('{not json'))
      ws.on('close', (code) => resolve(code))
      ws.on('error', reject)
    })
    expect(closed).toBe(CloseCode.badFrame)
    // A placement.
    const op = await callerFor(bff, OPERATOR.email, OPERATOR.password)
    const tenantId = (await op.tenants.create({ slug: 'metrics', name: 'Metrics' })).id
    await addMember(bff, op, tenantId, { email: 'dev@metrics.test', name: 'Dev', password: 'dev-password', role: 'owner' })
    const dev = await callerFor(bff, 'dev@metrics.test', 'dev-password')
    const appId = (await dev.apps.create({ tenantId, name: 'sleeper', replicas: 1, spec: { command: 'sleep', args: ['300'], cpuMillis: 10, memoryMb: 16 } })).id
    await waitFor('placed', async () => (await dev.apps.get({ tenantId, appId })).instances.some((i) => i.node))

    // Heartbeats keep arriving: wait until the second one of the node was measured against the first.
    const families = await waitFor('a heartbeat lateness sample', async () => {
      const f = await scrape()
      return (f.get('alveary_agent_heartbeat_late_seconds')?.samples.find((s) => s.name.endsWith('_count'))?.value ?? 0) > 0 && f
    })
    for (const [name, f] of families) {
      expect(f.help, `HELP of ${name}`).toBeTruthy()
      expect(f.type, `TYPE of ${name}`).toBeTruthy()
    }
    const sample = (family: string, name: string, labels: Record<string, string> = {}) =>
      families.get(family)?.samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value

    expect(families.get('alveary_api_request_duration_seconds')?.type).toBe('histogram')
    expect(sample('alveary_api_request_duration_seconds', 'alveary_api_request_duration_seconds_count', { procedure: 'auth.login', type: 'mutation', code: 'OK' })).toBeGreaterThanOrEqual(1)
    expect(sample('alveary_api_request_duration_seconds', 'alveary_api_request_duration_seconds_count', { procedure: 'auth.login', code: 'UNAUTHORIZED' })).toBe(1)
    expect(sample('alveary_scheduling_latency_seconds', 'alveary_scheduling_latency_seconds_count')).toBeGreaterThanOrEqual(1)
    expect(sample('alveary_agents_connected', 'alveary_agents_connected')).toBe(1)
    expect(sample('alveary_agent_frames_total', 'alveary_agent_frames_total', { type: 'heartbeat' })).toBeGreaterThanOrEqual(2)
    expect(sample('alveary_agent_rejected_total', 'alveary_agent_rejected_total', { reason: 'not_json' })).toBe(1)
    expect(sample('alveary_agent_heartbeat_lag_seconds', 'alveary_agent_heartbeat_lag_seconds_count')).toBeGreaterThanOrEqual(2)
    expect(sample('alveary_agents_pending', 'alveary_agents_pending')).toBe(0)
    expect(sample('alveary_change_bus_connected', 'alveary_change_bus_connected')).toBe(1)
    expect(sample('alveary_scheduler_placed_total', 'alveary_scheduler_placed_total')).toBeGreaterThanOrEqual(1)
    expect(families.get('process_cpu_seconds_total')?.type).toBe('counter')

    // Histograms: cumulative buckets ending in +Inf, which equals the count.
    for (const [name, f] of families) {
      if (f.type !== 'histogram') continue
      const series = new Map<string, { le: number; v: number }[]>()
      for (const s of f.samples.filter((x) => x.name === `${name}_bucket`)) {
        const { le, ...rest } = s.labels
        const key = JSON.stringify(rest)
        series.set(key, [...(series.get(key) ?? []), { le: le === '+Inf' ? Infinity : Number(le), v: s.value }])
      }
      for (const [key, buckets] of series) {
        const values = [...buckets].sort((a, b) => a.le - b.le).map((b) => b.v)
        expect(values, `${name} ${key}`).toEqual([...values].sort((a, b) => a - b))
        const count = f.samples.find((x) => x.name === `${name}_count` && JSON.stringify((({ le: _, ...r }) => r)(x.labels)) === key)?.value
        expect(buckets.find((b) => b.le === Infinity)?.v, `${name} ${key} +Inf`).toBe(count)
      }
    }
  })

  it('escapes label values', async () => {
    const metrics = createMetrics()
    const odd = 'odd "name"\\with\nnewline'
    metrics.observeProcedure(odd, 'query', 0.01, 'OK')
    const parsed = parseExposition(await metrics.registry.metrics())
    expect(parsed.get('alveary_api_request_duration_seconds')?.samples.some((s) => s.labels.procedure === odd)).toBe(true)
  })
})
