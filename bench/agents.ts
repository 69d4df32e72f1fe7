/**
 * npm run bench:agents -- [--agents 1000,5000] [--seconds 30] [--heartbeat-ms 5000]
 *
 * N simulated agents over real WebSockets against one BFF process (real PostgreSQL):
 * heartbeats/s handled and the BFF's CPU at each size. The BFF runs as its own process so
 * its CPU is measured apart from the simulated agents'. Ends with one line of JSON.
 */
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { PROTOCOL_VERSION } from '@alveary/core/protocol'
import WebSocket from 'ws'
import { z } from 'zod'
import { freshDatabase } from '../apps/bff/src/fresh-database'

const { values } = parseArgs({ options: { agents: { type: 'string', default: '1000,5000' }, seconds: { type: 'string', default: '30' }, 'heartbeat-ms': { type: 'string', default: '5000' } } })
const opts = z
  .object({
    agents: z.string().transform((s, ctx) => {
      const xs = s.split(',').map(Number)
      if (xs.some((x) => !Number.isInteger(x) || x < 1)) ctx.addIssue({ code: 'custom', message: '--agents takes sizes like 1000,5000' })
      return xs.sort((a, b) => a - b)
    }),
    seconds: z.coerce.number().int().min(5),
    'heartbeat-ms': z.coerce.number().int().min(100),
  })
  .parse(values)
const root = path.resolve(import.meta.dirname, '..')
const log = (s: string) => process.stderr.write(`${s}\n`)
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const TICKS = 100 // USER_HZ on Linux

const db = await freshDatabase()
const port = 20000 + Math.floor(Math.random() * 10000)
const bff = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'apps/bff/src/main.ts')], {
  cwd: root,
  env: { ...process.env, DATABASE_URL: db.url, BFF_PORT: String(port), BFF_HOST: '127.0.0.1', ALVEARY_OPERATOR_PASSWORD: 'bench-password', ALVEARY_HEARTBEAT_MS: String(opts['heartbeat-ms']), ALVEARY_NODE_LEASE_MS: '600000', LOG_LEVEL: 'error' },
  stdio: ['ignore', 'ignore', 'inherit'],
})
const base = `http://127.0.0.1:${port}`
const cpuSeconds = () => {
  const f = readFileSync(`/proc/${bff.pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return (Number(f[11]) + Number(f[12])) / TICKS
}
const frames = async () => {
  const text = await (await fetch(`${base}/metrics`)).text()
  return Number(/alveary_agent_frames_total\{type="heartbeat"\} (\d+)/.exec(text)?.[1] ?? 0)
}
const trpc = async (proc: string, input: unknown, cookie?: string) => {
  const res = await fetch(`${base}/trpc/${proc}`, { method: 'POST', headers: { 'content-type': 'application/json', ...(cookie && { cookie }) }, body: JSON.stringify({ json: input }) })
  if (!res.ok) throw new Error(`${proc}: ${res.status} ${await res.text()}`)
  return { body: (await res.json()) as { result: { data: { json: any } } }, cookie: res.headers.get('set-cookie')?.split(';')[0] }
}

const sockets: WebSocket[] = []
let finished = false
const timers: NodeJS.Timeout[] = []
try {
  for (let i = 0; i < 100; i++) {
    if (await fetch(`${base}/healthz`).then((r) => r.ok, () => false)) break
    await sleep(200)
  }
  const { cookie } = await trpc('auth.login', { email: 'operator@alveary.local', password: 'bench-password' })
  const token = (await trpc('joinTokens.create', { description: 'bench', ttlHours: 1, uses: opts.agents.at(-1) }, cookie)).body.result.data.json.token as string

  const connect = (i: number) =>
    new Promise<void>((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/agent`)
      ws.on('open', () =>
        ws.send(JSON.stringify({ type: 'hello', protocolVersion: PROTOCOL_VERSION, auth: { joinToken: token }, node: { name: `sim-${i}`, address: '10.1.0.1', labels: {}, cpuMillis: 4000, memoryMb: 8192, drivers: ['process'], agentVersion: 'bench' } })),
      )
      ws.once('message', () => {
        // Heartbeats at the configured interval, phases spread at random like a real fleet.
        const beat = () => ws.readyState === ws.OPEN && ws.send(JSON.stringify({ type: 'heartbeat', cpuUsedMillis: 100, memoryUsedMb: 256, appliedGeneration: 1 }))
        timers.push(setTimeout(() => timers.push(setInterval(beat, opts['heartbeat-ms'])), Math.random() * opts['heartbeat-ms']))
        resolve()
      })
      ws.on('error', reject)
      ws.on('close', (code, reason) => !finished && log(`agent ${i} closed: ${code} ${reason}`))
      sockets.push(ws)
    })

  const results: { agents: number; heartbeatsPerSec: number; expectedPerSec: number; bffCpuPercent: number; joinSeconds: number }[] = []
  for (const n of opts.agents) {
    const t0 = performance.now()
    for (let i = sockets.length; i < n; i += 50) await Promise.all(Array.from({ length: Math.min(50, n - i) }, (_, k) => connect(i + k)))
    const joinSeconds = (performance.now() - t0) / 1000
    await sleep(opts['heartbeat-ms'] * 2) // every agent has reached its steady rhythm
    const [f0, c0, w0] = [await frames(), cpuSeconds(), performance.now()]
    await sleep(opts.seconds * 1000)
    const [f1, c1, w1] = [await frames(), cpuSeconds(), performance.now()]
    const secs = (w1 - w0) / 1000
    const r = { agents: n, heartbeatsPerSec: Math.round((f1 - f0) / secs), expectedPerSec: Math.round((n * 1000) / opts['heartbeat-ms']), bffCpuPercent: Math.round(((c1 - c0) / secs) * 1000) / 10, joinSeconds: Math.round(joinSeconds * 10) / 10 }
    log(`${n} agents: ${r.heartbeatsPerSec} heartbeats/s handled (expected ${r.expectedPerSec}), BFF CPU ${r.bffCpuPercent}% of one core, joined in ${r.joinSeconds}s`)
    results.push(r)
  }
  log(`machine: ${os.cpus().length} × ${os.cpus()[0]?.model}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, node ${process.version}`)
  console.log(JSON.stringify({ heartbeatMs: opts['heartbeat-ms'], results }))
} finally {
  finished = true
  timers.forEach((t) => clearTimeout(t))
  sockets.forEach((s) => s.terminate())
  bff.kill('SIGTERM')
  await new Promise((r) => bff.once('exit', r))
  await db.drop()
}
