import { spawn, type ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { CloseCode, MAX_FRAME_BYTES } from '@alveary/core/protocol'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { repoRoot } from '../src/config'
import { freshDatabase, waitFor } from './harness'
import { joinSim, type SimAgent } from './sim-agent'

// A peer that sends valid 1 MiB frames as fast as its socket takes them must not grow the
// BFF's memory without bound. The BFF runs as its own process so its memory is its own.
let db: Awaited<ReturnType<typeof freshDatabase>>
let bff: ChildProcess
let base: string
const sims: SimAgent[] = []

const rssMb = () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${bff.pid}/status`, 'utf8'))![1]) / 1024

async function trpc(proc: string, input: unknown, cookie?: string) {
  const res = await fetch(`${base}/trpc/${proc}`, { method: 'POST', headers: { 'content-type': 'application/json', ...(cookie && { cookie }) }, body: JSON.stringify({ json: input }) })
  if (!res.ok) throw new Error(`${proc}: ${res.status} ${await res.text()}`)
  return { data: ((await res.json()) as { result: { data: { json: any } } }).result.data.json, cookie: res.headers.get('set-cookie')?.split(';')[0] }
}

/** A valid logs frame just under the frame limit. */
function bigLogsFrame(): Buffer {
  const line = 'x'.repeat(8000)
  const entries = Array.from({ length: 120 }, () => ({ instanceId: randomUUID(), stream: 'stdout', ts: new Date().toISOString(), line }))
  const frame = JSON.stringify({ type: 'logs', entries })
  if (frame.length > MAX_FRAME_BYTES) throw new Error('frame too big')
  return Buffer.from(frame)
}

beforeAll(async () => {
  if (process.platform !== 'linux') return
  db = await freshDatabase()
  const port = 20_000 + Math.floor(Math.random() * 10_000)
  base = `http://127.0.0.1:${port}`
  bff = spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'apps/bff/src/main.ts')], {
    cwd: repoRoot,
    env: { ...process.env, DATABASE_URL: db.url, BFF_PORT: String(port), BFF_HOST: '127.0.0.1', ALVEARY_OPERATOR_PASSWORD: 'flood-password', LOG_LEVEL: 'error' },
    stdio: ['ignore', 'ignore', 'inherit'],
  })
  await waitFor('BFF up', () => fetch(`${base}/healthz`).then((r) => r.ok, () => false), 60_000)
  const { cookie } = await trpc('auth.login', { email: 'operator@alveary.local', password: 'flood-password' })
  const { data } = await trpc('joinTokens.create', { description: 'flood', ttlHours: 1, uses: 10 }, cookie)
  for (let i = 0; i < 8; i++) sims.push(await joinSim(base, { joinToken: data.token }, `flood-${i}`, { unmasked: true }))
}, 90_000)
afterAll(async () => {
  sims.forEach((s) => s.close())
  if (bff && bff.exitCode === null) {
    bff.kill('SIGTERM')
    await new Promise((r) => bff.once('exit', r))
  }
  await db?.drop()
})

it('bounds the memory a flood of valid 1 MiB frames can take, and gives it back', async () => {
  if (process.platform !== 'linux') return console.warn('skipped: reads the BFF process memory from /proc (Linux only)')
  const frame = bigLogsFrame()
  // Warm up: the same kind of frames at a pace the server keeps up with.
  for (let i = 0; i < 20; i++) {
    for (const s of sims) s.ws.send(frame, { binary: false })
    await waitFor('warm-up frames sent', async () => sims.every((s) => s.ws.bufferedAmount === 0), 10_000, 10)
  }
  await new Promise((r) => setTimeout(r, 1000))
  const baseline = rssMb()

  // Flood for a few seconds: each peer keeps its socket's send buffer full.
  let peak = baseline
  let sent = 0
  const until = Date.now() + 8_000
  const sampler = setInterval(() => (peak = Math.max(peak, rssMb())), 100)
  while (Date.now() < until) {
    for (const s of sims) {
      if (s.closed) continue
      while (s.ws.bufferedAmount < 8 * MAX_FRAME_BYTES) {
        s.ws.send(frame, { binary: false })
        sent++
      }
    }
    await new Promise((r) => setImmediate(r))
  }
  clearInterval(sampler)
  // The flooders stop; what they sent meanwhile is either handled or dropped with the connection.
  sims.forEach((s) => s.close())
  const settled = await waitFor(
    'memory back near the baseline',
    async () => {
      const now = rssMb()
      return now < baseline + 64 ? now : null
    },
    30_000,
    250,
  ).catch(() => rssMb())
  console.log(`flood: ${sent} frames of 1 MiB sent; BFF RSS baseline ${baseline.toFixed(0)} MB, peak ${peak.toFixed(0)} MB, after ${settled.toFixed(0)} MB`)
  expect(peak - baseline).toBeLessThan(256)
  expect(settled - baseline).toBeLessThan(64)
  // The BFF still serves.
  expect((await fetch(`${base}/healthz`)).ok).toBe(true)
  expect(sims.every((s) => s.closed === null || s.closed.code !== CloseCode.badFrame)).toBe(true)
}, 120_000)
