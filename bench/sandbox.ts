/**
 * bench:sandbox — instance start latency of the process driver with and without the sandbox
 * (bwrap, setpriv, cgroups), interleaved in one run so both see the same machine load.
 * A start is measured from driver.start() until the instance's process has run and exited
 * (`/bin/true`): everything the sandbox adds (cgroup creation, namespaces, mounts, uid switch)
 * is inside it. A third series adds what the agent does before such a start on host networking:
 * the instance's own network namespace (veth, addresses, its port forward in nftables; see
 * network/isolated.ts), from the desired state's arrival to the exit, the namespace taken from
 * the node's warm pool ("netns ready": until the start has it; its port forward goes in beside
 * the sandbox's start, and the start waits for both); a fourth the same with no pool (each
 * namespace built on the start path, as before the pool). One start of each series first, not counted (a cold pool, the first look
 * at the machine). `-- --starts N` (default 100). Needs root and bubblewrap (and iproute2 +
 * nftables for the namespace series).
 */
import { randomUUID } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TDesiredInstance } from '@alveary/core/protocol'
import pino from 'pino'
import { createNetworkDriver } from '../packages/agents/src/network'
import { createProcessDriver } from '../packages/agents/src/runtime/process/driver'
import { probeSandbox } from '../packages/agents/src/sandbox'

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? Number(process.argv[i + 1]) : dflt
}
const STARTS = arg('starts', 100)

const dataDir = await mkdtemp(join(tmpdir(), 'alveary-bench-sandbox-'))
const probe = await probeSandbox({ group: `alveary-bench-${process.pid}`, pidsMax: 256, hide: [dataDir], etcDir: join(dataDir, 'etc') })
if (!probe.ok) {
  console.error(`bench:sandbox needs a node that can sandbox: ${probe.reason}`)
  process.exit(1)
}
// Prefixes of its own (namespaces, links, nftables table): nothing of an agent on this machine is touched.
const prefix = (k: number) => `b${((process.pid * 2 + k) % 36 ** 3).toString(36).padStart(3, '0')}`
const log = pino({ level: 'silent' })
const network = await createNetworkDriver({ mode: 'host', prefix: prefix(0), vtep: '127.0.0.1', log, isolate: true })
const unpooled = await createNetworkDriver({ mode: 'host', prefix: prefix(1), vtep: '127.0.0.1', log, isolate: true, isolatedPool: 0 })
if (!network.isolated || !unpooled.isolated) {
  console.error('bench:sandbox needs iproute2 and nftables for the isolated series')
  process.exit(1)
}
const plain = createProcessDriver({ dataDir, adoptedPollMs: 1000 })
const boxed = createProcessDriver({ dataDir, adoptedPollMs: 1000, sandbox: probe.sandbox })

const instance = (): TDesiredInstance => ({
  instanceId: randomUUID(),
  tenantId: randomUUID(),
  runAs: { uid: 200_000, gid: 200_000 },
  appId: randomUUID(),
  appName: 'bench',
  ordinal: 0,
  desiredState: 'running',
  generation: 1,
  mounts: [],
  fence: { stopAfterDisconnect: false },
  interfaces: [],
  spec: { driver: 'process', image: null, command: '/bin/true', args: [], env: {}, ports: [], cpuMillis: 500, memoryMb: 64, restartPolicy: 'never', stopGraceSeconds: 1 },
})

async function once(driver: typeof plain): Promise<number> {
  const inst = instance()
  const t0 = performance.now()
  const h = await driver.start(inst)
  const exit = await h.exited
  const ms = performance.now() - t0
  if (exit.exitCode !== 0) throw new Error(`start failed: ${exit.message}`)
  await driver.release(inst.instanceId)
  return ms
}

// The driver unrefs its children (instances outlive the agent): keep the loop alive while they run.
/**
 * A start as the agent does it on host networking: the desired state arrives, the namespace is
 * prepared, the sandbox starts in it. `ready` gets the time until the namespace was.
 */
async function onceIsolated(net: typeof network, k: number, ports: number, ready: number[]): Promise<number> {
  // A published port above Linux's ephemeral range (nothing else on the machine uses it).
  const inst = { ...instance(), generation: k + 1 }
  inst.spec = { ...inst.spec, ports: [{ name: 'http', containerPort: null, hostPort: ports + (k % 500) }] }
  const t0 = performance.now()
  net.apply({ type: 'desired', generation: k + 1, instances: [inst], networks: [], loadBalancers: [] })
  const ctx = await net.startContext(inst)
  ready.push(performance.now() - t0)
  const h = await boxed.start(inst, undefined, ctx)
  const exit = await h.exited
  const ms = performance.now() - t0
  if (exit.exitCode !== 0) throw new Error(`start failed: ${exit.message}`)
  await boxed.release(inst.instanceId)
  return ms
}

const keepAlive = setInterval(() => {}, 1000)
const times = { plain: [] as number[], sandboxed: [] as number[], isolated: [] as number[], unpooled: [] as number[], ready: [] as number[], unpooledReady: [] as number[] }
const loadBefore = loadavg()[0]!
try {
  for (let i = -1; i < STARTS; i++) {
    const t = [await once(plain), await once(boxed), await onceIsolated(network, i + 1, 64_000, times.ready), await onceIsolated(unpooled, i + 1, 64_500, times.unpooledReady)]
    if (i < 0) {
      times.ready.length = times.unpooledReady.length = 0
      continue
    }
    times.plain.push(t[0]!)
    times.sandboxed.push(t[1]!)
    times.isolated.push(t[2]!)
    times.unpooled.push(t[3]!)
  }
} finally {
  clearInterval(keepAlive)
  await network.close({ stopped: true })
  await unpooled.close({ stopped: true })
  await rm(dataDir, { recursive: true, force: true })
}
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!
const r = {
  starts: STARTS,
  plainP50Ms: +pct(times.plain, 50).toFixed(1),
  plainP99Ms: +pct(times.plain, 99).toFixed(1),
  sandboxedP50Ms: +pct(times.sandboxed, 50).toFixed(1),
  sandboxedP99Ms: +pct(times.sandboxed, 99).toFixed(1),
  isolatedP50Ms: +pct(times.isolated, 50).toFixed(1),
  isolatedP99Ms: +pct(times.isolated, 99).toFixed(1),
  netnsReadyP50Ms: +pct(times.ready, 50).toFixed(1),
  netnsReadyP99Ms: +pct(times.ready, 99).toFixed(1),
  unpooledP50Ms: +pct(times.unpooled, 50).toFixed(1),
  unpooledP99Ms: +pct(times.unpooled, 99).toFixed(1),
  unpooledReadyP50Ms: +pct(times.unpooledReady, 50).toFixed(1),
  unpooledReadyP99Ms: +pct(times.unpooledReady, 99).toFixed(1),
  load: [+loadBefore.toFixed(1), +loadavg()[0]!.toFixed(1)],
}
const row = (k: string, v: string) => console.log(`${k.padEnd(30)} ${v}`)
console.log(`bench:sandbox — ${STARTS} starts each of /bin/true, interleaved (load average ${r.load.join(' → ')})`)
row('plain process p50 / p99', `${r.plainP50Ms} / ${r.plainP99Ms} ms`)
row('sandboxed p50 / p99', `${r.sandboxedP50Ms} / ${r.sandboxedP99Ms} ms`)
row('added p50 / p99 (target p99 < 50)', `${(r.sandboxedP50Ms - r.plainP50Ms).toFixed(1)} / ${(r.sandboxedP99Ms - r.plainP99Ms).toFixed(1)} ms`)
row('+ own netns (pool) p50 / p99', `${r.isolatedP50Ms} / ${r.isolatedP99Ms} ms`)
row('  of which netns ready', `${r.netnsReadyP50Ms} / ${r.netnsReadyP99Ms} ms`)
row('netns adds p50 / p99', `${(r.isolatedP50Ms - r.sandboxedP50Ms).toFixed(1)} / ${(r.isolatedP99Ms - r.sandboxedP99Ms).toFixed(1)} ms`)
row('sandbox + netns add p50 / p99', `${(r.isolatedP50Ms - r.plainP50Ms).toFixed(1)} / ${(r.isolatedP99Ms - r.plainP99Ms).toFixed(1)} ms`)
row('+ own netns (no pool) p50 / p99', `${r.unpooledP50Ms} / ${r.unpooledP99Ms} ms`)
row('  of which netns ready', `${r.unpooledReadyP50Ms} / ${r.unpooledReadyP99Ms} ms`)
console.log(JSON.stringify(r))
