/**
 * npm run bench:lb -- [--replicas 200] [--seconds 15] [--connections 64]
 *
 * N replicas of a small HTTP server (nginx with one worker, else busybox httpd, which forks
 * per request; process driver) deployed through Alveary
 * behind an Alveary load balancer served by HAProxy on the agent; wrk drives (a) that load
 * balancer and (b) a plain HAProxy configured by hand with the same backends, same duration
 * and connections, alternating (a, b, a, b: the best of each counts, the machine is shared).
 * Then (a) again during a rolling deploy of every replica and a scale N -> N/2 -> N,
 * counting failed requests. Ends with one line of JSON.
 */
import { execFileSync, spawn } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { z } from 'zod'
import { addMember, callerFor, OPERATOR, startInProcessAgent, startTestBff, waitFor } from '../apps/bff/test/harness'
import { cleanupOnInterrupt } from './interrupt'

const { values } = parseArgs({ options: { replicas: { type: 'string', default: '200' }, seconds: { type: 'string', default: '15' }, connections: { type: 'string', default: '64' } } })
const opts = z.object({ replicas: z.coerce.number().int().min(2).max(1000), seconds: z.coerce.number().int().min(3), connections: z.coerce.number().int().min(1).max(4000) }).parse(values)
const log = (s: string) => process.stderr.write(`${s}\n`)
const have = (tool: string) => {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}
for (const tool of ['haproxy', 'wrk'])
  if (!have(tool)) {
    log(`bench:lb needs ${tool} (apt-get install ${tool})`)
    process.exit(2)
  }
const server = have('nginx') ? 'nginx' : have('busybox') ? 'busybox' : null
if (!server) {
  log('bench:lb needs nginx (apt-get install nginx-light) or busybox (apt-get install busybox-static) for the replicas')
  process.exit(2)
}

interface WrkResult {
  reqPerSec: number
  p50Ms: number
  p99Ms: number
  requests: number
  errors: number
  /** What the errors were, as wrk counts them (a timeout is an answer slower than --timeout). */
  errorKinds: { connect: number; read: number; write: number; timeout: number; non2xx: number }
  /** Status → count of the non-2xx answers, and the start of one body of each (with `statuses`). */
  statuses: Record<string, { count: number; body: string }>
}
const ms = (v: string, unit: string) => Number(v) * ({ us: 0.001, ms: 1, s: 1000 } as Record<string, number>)[unit]!
function parseWrk(out: string): WrkResult {
  const lat = (p: string) => {
    const m = new RegExp(`\\s${p}%\\s+([\\d.]+)(us|ms|s)`).exec(out)
    return m ? ms(m[1]!, m[2]!) : NaN
  }
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out)
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0)
  return {
    reqPerSec: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0),
    p50Ms: lat('50'),
    p99Ms: lat('99'),
    requests: Number(/(\d+) requests in/.exec(out)?.[1] ?? 0),
    errors: (sock ? sock.slice(1).reduce((a, x) => a + Number(x), 0) : 0) + non2xx,
    errorKinds: { connect: Number(sock?.[1] ?? 0), read: Number(sock?.[2] ?? 0), write: Number(sock?.[3] ?? 0), timeout: Number(sock?.[4] ?? 0), non2xx },
    statuses: Object.fromEntries([...out.matchAll(/^status (\d+) (\d+) (.*)$/gm)].map((m) => [m[1]!, { count: Number(m[2]), body: m[3]! }])),
  }
}
/**
 * wrk's Lua hooks to tell which non-2xx answers came (wrk counts them only): per status, how
 * many and the start of one body. A Lua call per response slows wrk down, so only the
 * rollout run uses it, not the runs whose req/s are compared.
 */
const STATUSES_LUA = `
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) codes = {} bodies = {} end
function response(status, headers, body)
  if status >= 300 then
    codes[status] = (codes[status] or 0) + 1
    if not bodies[status] then bodies[status] = string.gsub(string.sub(body or '', 1, 80), '%s+', ' ') end
  end
end
function done(summary, latency, requests)
  for _, t in ipairs(threads) do
    local c, b = t:get('codes'), t:get('bodies')
    for k, v in pairs(c) do io.write(string.format('status %d %d %s\\n', k, v, b[k] or '')) end
  end
end
`
/**
 * CPU seconds (user + system) of the processes whose command line contains `needle`: an
 * HAProxy's master and workers, by the path of its configuration. Per request, this compares
 * the two configurations where req/s on a shared host cannot.
 */
function cpuSeconds(needle: string) {
  let ticks = 0
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(needle)) continue
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      ticks += Number(f[11]) + Number(f[12])
    } catch {
      // Gone meanwhile.
    }
  }
  return ticks / 100
}
/** wrk for `seconds`, or until stop() (SIGINT: wrk prints its summary). */
function wrk(url: string, seconds: number, o: { statuses?: boolean } = {}) {
  const script = o.statuses ? ['-s', path.join(work, 'statuses.lua')] : []
  const p = spawn('wrk', ['-t1', `-c${opts.connections}`, `-d${seconds}s`, '--latency', '--timeout', '5s', ...script, url], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  p.stdout.on('data', (d) => (out += d))
  const done = new Promise<WrkResult>((resolve) => p.on('close', () => resolve(parseWrk(out))))
  return { done, stop: () => (p.kill('SIGINT'), done) }
}

const work = await mkdtemp(path.join(os.tmpdir(), 'alveary-bench-lb-'))
const portBase = 20_000 + Math.floor(Math.random() * 8) * 1000
const lbPort = 30_000 + Math.floor(Math.random() * 20) * 100
// The node lease as shipped (20 s), not the tests' 3 s: with wrk and HAProxy on both cores a
// heartbeat comes late now and then, and a node marked lost has its instances evicted mid-run.
const bff = await startTestBff({ ALVEARY_HOST_PORT_MIN: String(portBase), ALVEARY_HOST_PORT_MAX: String(portBase + 999), ALVEARY_LB_PORT_MIN: String(lbPort), ALVEARY_LB_PORT_MAX: String(lbPort + 99), ALVEARY_HEARTBEAT_MS: '2000', ALVEARY_NODE_LEASE_MS: '20000' })
let plain: ReturnType<typeof spawn> | null = null
let agent: Awaited<ReturnType<typeof startInProcessAgent>> | null = null
const cleanup = cleanupOnInterrupt(async () => {
  plain?.kill('SIGTERM')
  await agent?.shutdown({ stopInstances: true })
  await bff.stop()
  await bff.dropDatabase()
  await rm(work, { recursive: true, force: true })
})
try {
  const op = await callerFor(bff, OPERATOR.email, OPERATOR.password)
  const joinToken = (await op.joinTokens.create({ description: 'bench', ttlHours: 1 })).token
  const tenantId = (await op.tenants.create({ slug: 'bench', name: 'Bench', quotas: { instances: 5000, cpuMillis: 1_000_000, memoryMb: 1_000_000, apps: 10 } })).id
  await addMember(bff, op, tenantId, { email: 'dev@bench.test', name: 'Dev', password: 'dev-password', role: 'owner' })
  const dev = await callerFor(bff, 'dev@bench.test', 'dev-password')
  agent = await startInProcessAgent({ server: bff.url, joinToken, name: 'bench-node', dataDir: path.join(work, 'agent') })
  const node = await waitFor('node', async () => (await op.nodes.list()).find((n) => n.name === 'bench-node' && n.state === 'ready'))
  if (agent.lbDriver !== 'haproxy') throw new Error(`the agent offers ${agent.lbDriver} as its load balancer, not haproxy`)
  await op.loadBalancers.setNode({ nodeId: node.id, enabled: true })

  // Each replica: nginx with one worker answering a fixed body (its own prefix, config and temp
  // folders: Debian's build puts those under /var/lib/nginx, read-only in the sandbox), or busybox httpd.
  const nginx = `d=${work}/i-$ALVEARY_INSTANCE_ID; mkdir -p $d; printf 'daemon off; worker_processes 1; pid %s/pid; error_log stderr error; events { worker_connections 4096; } http { access_log off; keepalive_requests 100000; client_body_temp_path %s/body; proxy_temp_path %s/proxy; fastcgi_temp_path %s/fastcgi; uwsgi_temp_path %s/uwsgi; scgi_temp_path %s/scgi; server { listen %s; location / { return 200 "hello from a replica\\n"; } } }' $d $d $d $d $d $d "$PORT" > $d/nginx.conf; exec nginx -p $d -c $d/nginx.conf`
  const spec = (version: string) => ({
    command: 'sh',
    // Each replica writes its files under its own name in the work folder's path: in a sandbox
    // that path is on the instance's private /tmp (the host's work folder is not visible there).
    args: ['-c', server === 'nginx' ? nginx : `d=${work}/i-$ALVEARY_INSTANCE_ID; mkdir -p $d; echo 'hello from a replica' > $d/index.html; exec busybox httpd -f -p "$PORT" -h $d`],
    env: { VERSION: version },
    cpuMillis: 10,
    memoryMb: 4,
    ports: [{ name: 'http', readiness: { type: 'tcp' as const, intervalSeconds: 2, timeoutSeconds: 1, failureThreshold: 2 } }],
    maxSurge: Math.ceil(opts.replicas / 4),
    maxUnavailable: Math.ceil(opts.replicas / 10),
    progressDeadlineSeconds: 300,
  })
  const t0 = Date.now()
  const appId = (await dev.apps.create({ tenantId, name: 'small', replicas: opts.replicas, spec: spec('1') })).id
  const ready = async (n: number) =>
    waitFor(`${n} ready`, async () => {
      const d = await dev.apps.get({ tenantId, appId })
      return d.instances.filter((i) => i.ready && i.desiredState === 'running').length >= n && d.instances.filter((i) => i.desiredState === 'running').length === n && d
    }, 600_000, 1000)
  const app = await ready(opts.replicas)
  log(`${opts.replicas} replicas ready in ${((Date.now() - t0) / 1000).toFixed(1)}s`)
  const lb = await dev.loadBalancers.create({ tenantId, name: 'front', drainSeconds: 2, listeners: [{ protocol: 'http', rules: [{ targets: [{ appId, port: 'http' }] }] }] })
  const url = await waitFor('lb active', async () => {
    const l = await dev.loadBalancers.get({ tenantId, lbId: lb.id })
    return l.state === 'active' && l.addresses[0]?.url
  }, 60_000)
  await waitFor('lb serves', async () => (await fetch(url)).ok)

  // The same backends in a plain HAProxy configured by hand.
  const plainPort = lbPort + 50
  const backends = app.instances.filter((i) => i.desiredState === 'running').map((i, k) => `  server s${k} 127.0.0.1:${i.hostPorts.http} weight 100`)
  await writeFile(
    path.join(work, 'plain.cfg'),
    ['global', '  maxconn 5000', 'defaults', '  mode http', '  timeout connect 5s', '  timeout client 60s', '  timeout server 60s', `frontend f`, `  bind :${plainPort}`, '  default_backend b', 'backend b', '  balance roundrobin', ...backends, ''].join('\n'),
  )
  plain = spawn('haproxy', ['-f', path.join(work, 'plain.cfg')], { stdio: 'inherit' })
  const plainUrl = `http://127.0.0.1:${plainPort}/`
  await waitFor('plain haproxy', async () => (await fetch(plainUrl)).ok)

  const best = (x: WrkResult, y: WrkResult) => (y.reqPerSec > x.reqPerSec ? y : x)
  /**
   * One measured run, with the CPU the driven HAProxy spent per request (µs) and what this
   * process (the BFF and the agent, with its health checks and stats polling) took meanwhile.
   */
  const measured = async (target: string, haproxyCfg: string) => {
    const [h0, own0, t0] = [cpuSeconds(haproxyCfg), process.cpuUsage(), Date.now()]
    const r = await wrk(target, opts.seconds).done
    const own = process.cpuUsage(own0)
    return { r, usPerRequest: r.requests ? ((cpuSeconds(haproxyCfg) - h0) * 1e6) / r.requests : NaN, ownCpuPct: ((own.user + own.system) / 1000 / (Date.now() - t0)) * 100 }
  }
  let h: WrkResult | null = null
  let a: WrkResult | null = null
  const cpu = { lb: [] as number[], plain: [] as number[], own: [] as number[] }
  for (let round = 1; round <= 2; round++) {
    log(`round ${round}: wrk ${opts.seconds}s, ${opts.connections} connections against the Alveary load balancer…`)
    const ra = await measured(`${url}/`, path.join(work, 'agent', 'haproxy'))
    log(`round ${round}: … and against the plain HAProxy`)
    const rh = await measured(plainUrl, path.join(work, 'plain.cfg'))
    log(`round ${round}: HAProxy CPU per request ${ra.usPerRequest.toFixed(1)} µs (Alveary) vs ${rh.usPerRequest.toFixed(1)} µs (plain); BFF + agent took ${ra.ownCpuPct.toFixed(0)}% / ${rh.ownCpuPct.toFixed(0)}% of a core; ${readFileSync('/proc/pressure/cpu', 'utf8').split('\n')[0]}`)
    a = a ? best(a, ra.r) : ra.r
    h = h ? best(h, rh.r) : rh.r
    cpu.lb.push(ra.usPerRequest)
    cpu.plain.push(rh.usPerRequest)
    cpu.own.push(ra.ownCpuPct, rh.ownCpuPct)
  }
  if (!a || !h) throw new Error('no wrk result')

  log('… Alveary load balancer during a rolling deploy and a scale down and up…')
  await writeFile(path.join(work, 'statuses.lua'), STATUSES_LUA)
  const during = wrk(`${url}/`, 3600, { statuses: true })
  const r0 = Date.now()
  await dev.apps.update({ tenantId, appId, spec: spec('2') })
  await waitFor('rollout', async () => (await dev.apps.get({ tenantId, appId })).rollout?.state === 'succeeded', 900_000, 1000)
  const rolloutS = (Date.now() - r0) / 1000
  await dev.apps.scale({ tenantId, appId, replicas: Math.floor(opts.replicas / 2) })
  await ready(Math.floor(opts.replicas / 2))
  await dev.apps.scale({ tenantId, appId, replicas: opts.replicas })
  await ready(opts.replicas)
  const d = await during.stop()

  const ratio = h.reqPerSec ? a.reqPerSec / h.reqPerSec : 0
  const row = (name: string, r: WrkResult) => `${name.padEnd(34)} ${r.reqPerSec.toFixed(0).padStart(9)} ${r.p50Ms.toFixed(2).padStart(8)} ${r.p99Ms.toFixed(2).padStart(8)} ${String(r.requests).padStart(9)} ${String(r.errors).padStart(7)}`
  console.log(`\n${'run'.padEnd(34)} ${'req/s'.padStart(9)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)} ${'requests'.padStart(9)} ${'errors'.padStart(7)}`)
  console.log(row('plain HAProxy (by hand)', h))
  console.log(row('Alveary load balancer', a))
  console.log(row('Alveary LB, rollout + scale', d))
  const k = d.errorKinds
  if (d.errors) console.log(`errors during the rollout: connect ${k.connect}, read ${k.read}, write ${k.write}, timeout (> 5 s) ${k.timeout}, non-2xx ${k.non2xx}`)
  for (const [status, x] of Object.entries(d.statuses)) console.log(`  status ${status}: ${x.count} (${x.body.trim() || 'no body'})`)
  const least = (xs: number[]) => Number(Math.min(...xs).toFixed(1))
  console.log(`\nHAProxy CPU per request (least of the rounds): Alveary ${least(cpu.lb)} µs, plain ${least(cpu.plain)} µs; BFF + agent (this process) ${Math.max(...cpu.own).toFixed(0)}% of a core at most during the runs`)
  console.log(`ratio ${ratio.toFixed(3)} · replicas: ${server} · rollout of ${opts.replicas} replicas took ${rolloutS.toFixed(1)}s · ${os.cpus().length} cores, load average ${os.loadavg()[0]!.toFixed(1)}`)
  console.log(
    JSON.stringify({ lbReqPerSec: Math.round(a.reqPerSec), haproxyReqPerSec: Math.round(h.reqPerSec), ratio: Number(ratio.toFixed(3)), errorsDuringRollout: d.errors, errorKindsDuringRollout: d.errorKinds, statusesDuringRollout: Object.fromEntries(Object.entries(d.statuses).map(([k, x]) => [k, x.count])), replicas: opts.replicas, rolloutSeconds: Number(rolloutS.toFixed(1)), p99Ms: a.p99Ms, haproxyP99Ms: h.p99Ms, lbUsPerRequest: least(cpu.lb), haproxyUsPerRequest: least(cpu.plain), ownCpuPctMax: Number(Math.max(...cpu.own).toFixed(0)) }),
  )
} finally {
  await cleanup()
}
