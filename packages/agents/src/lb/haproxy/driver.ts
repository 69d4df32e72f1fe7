/**
 * HAProxy as the load-balancer data plane, in master-worker mode. Membership, weights and
 * drain/ready state go through the worker's runtime API (no reload); structural changes
 * rewrite the configuration and reload through the master socket (the old worker finishes
 * its connections). HAProxy outlives an agent restart: the next agent adopts it and reloads
 * once to learn the slots.
 */
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdir, open, readFile, rename, writeFile } from 'node:fs/promises'
import path from 'node:path'
import type { Logger } from 'pino'
import type { TDesiredLb, TLbReport, TLbServer } from '@alveary/core/protocol'
import { portsInUse } from '../ports'
import type { LbNamespace } from '../../network/overlay/lb-join'
import type { LbPlane } from '../types'
import type { RawServerStat } from '../stats'
import { backendId, render, renderStructure } from './config'
import { applyCommands, runtimeApi } from './runtime'
import { assign, emptyAssignment, runtimeCommands, type Assignment } from './slots'

export interface HaproxyOptions {
  dir: string
  logger: Logger
  binary?: string
  maxconn?: number
  /** Built with network namespace support (probeHaproxy). */
  namespaces?: boolean
}

/**
 * True when an HAProxy binary runs here (advertised as the node's `lb` capability), and
 * whether it was built with network namespace support (servers inside tenant networks).
 */
export async function probeHaproxy(binary = 'haproxy'): Promise<{ ok: true; version: string; namespaces: boolean } | { ok: false; reason: string }> {
  return new Promise((resolve) => {
    const p = spawn(binary, ['-vv'], { stdio: ['ignore', 'pipe', 'ignore'] })
    let out = ''
    p.stdout.on('data', (d) => (out += d))
    p.on('error', (err) => resolve({ ok: false, reason: err.message }))
    p.on('close', (code) =>
      resolve(
        code === 0
          ? { ok: true, version: /version (\S+)/.exec(out)?.[1] ?? 'unknown', namespaces: /Built with network namespace support/.test(out) }
          : { ok: false, reason: `haproxy -vv exited with ${code}` },
      ),
    )
  })
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export function createHaproxyPlane(o: HaproxyOptions): LbPlane {
  const binary = o.binary ?? 'haproxy'
  const files = {
    cfg: path.join(o.dir, 'haproxy.cfg'),
    admin: path.join(o.dir, 'admin.sock'),
    master: path.join(o.dir, 'master.sock'),
    pid: path.join(o.dir, 'haproxy.pid'),
    log: path.join(o.dir, 'haproxy.log'),
    key: path.join(o.dir, 'cookie-key'),
  }
  let assignment: Assignment = emptyAssignment()
  /** Structure the running worker was started with ('' = unknown: the next apply reloads). */
  let structure = ''
  /** Listener ports the running worker holds. */
  let assignmentPorts: number[] = []
  /** The load balancer of each backend the worker serves. */
  let owners = new Map<string, string>()
  let masterPid: number | null = null
  let cookieKey = ''
  let chain: Promise<unknown> = Promise.resolve()

  const alive = (pid: number | null) => {
    if (!pid) return false
    try {
      process.kill(pid, 0)
      return true
    } catch {
      return false
    }
  }
  const workerPid = async () => /Pid: (\d+)/.exec(await runtimeApi(files.admin, ['show info'], 2000).catch(() => ''))?.[1] ?? null
  const logTail = async () => (await readFile(files.log, 'utf8').catch(() => '')).trim().split('\n').slice(-3).join(' | ').slice(0, 400)

  async function init() {
    await mkdir(o.dir, { recursive: true, mode: 0o700 })
    cookieKey = (await readFile(files.key, 'utf8').catch(() => '')).trim()
    if (!cookieKey) {
      cookieKey = randomBytes(16).toString('hex')
      await writeFile(files.key, cookieKey, { mode: 0o600 })
    }
    const pid = Number((await readFile(files.pid, 'utf8').catch(() => '')).trim()) || null
    if (alive(pid) && (await workerPid())) {
      masterPid = pid
      o.logger.info({ pid }, 'adopted the running HAProxy')
    }
  }
  const ready = init()

  async function writeConfig(text: string) {
    const tmp = `${files.cfg}.tmp`
    await writeFile(tmp, text, { mode: 0o600 })
    await rename(tmp, files.cfg)
  }

  async function start(): Promise<string | null> {
    const log = await open(files.log, 'a')
    const p = spawn(binary, ['-W', '-S', `${files.master},mode,600`, '-f', files.cfg, '-p', files.pid], { detached: true, stdio: ['ignore', log.fd, log.fd] })
    await log.close()
    let exited: number | null = null
    p.on('exit', (code) => (exited = code ?? -1))
    p.unref()
    for (let i = 0; i < 100; i++) {
      if (exited !== null) return `HAProxy did not start (exit ${exited}): ${await logTail()}`
      if (await workerPid()) {
        masterPid = p.pid ?? null
        return null
      }
      await sleep(50)
    }
    return `HAProxy did not answer on its runtime socket: ${await logTail()}`
  }

  async function reload(): Promise<string | null> {
    const before = await workerPid()
    // The master re-creates its socket while it re-executes after a reload: wait for it.
    for (let i = 0; ; i++) {
      try {
        await runtimeApi(files.master, ['reload'], 5000)
        break
      } catch (err) {
        if (i >= 100) return `HAProxy's master socket does not answer: ${(err as Error).message}`
        await sleep(50)
      }
    }
    for (let i = 0; i < 200; i++) {
      const now = await workerPid()
      if (now && now !== before) return null
      await sleep(25)
    }
    return `HAProxy kept its previous configuration (the reload failed): ${await logTail()}`
  }

  async function apply(desired: readonly TDesiredLb[], netns: ReadonlyMap<string, LbNamespace>): Promise<TLbReport[]> {
    await ready
    // A server of a network this node has not joined (yet): nothing can reach it.
    const lbs = desired.map((lb) => ({
      ...lb,
      backends: lb.backends.map((b) => ({ ...b, servers: b.servers.map((s) => (s.networkId && !netns.has(s.networkId) ? { ...s, state: 'down' as const } : s)) })),
    }))
    const nsOf = (s: TLbServer) => (s.networkId ? (netns.get(s.networkId)?.name ?? null) : null)
    const names = new Set([...netns.values()].map((n) => n.name))
    // A listener port something else holds would stop HAProxy from loading anything.
    const ours = new Set(alive(masterPid) ? assignmentPorts : [])
    const busy = await portsInUse(lbs.flatMap((lb) => lb.listeners.map((l) => l.port)).filter((p) => !ours.has(p)))
    const served = lbs.filter((lb) => !lb.listeners.some((l) => busy.has(l.port)))
    const refused = lbs.filter((lb) => !served.includes(lb))
    const { next, slotNs } = assign(assignment, served, nsOf, (ns) => names.has(ns))
    const netnsIds = new Map([...netns.values()].map((n) => [n.name, n.id]))
    const opts = { adminSocket: files.admin, idleSocket: path.join(o.dir, 'idle.sock'), cookieKey, maxconn: o.maxconn ?? 5000, netnsIds }
    const nextStructure = renderStructure(served, slotNs, opts)
    let error: string | null = null
    if (!served.length && !alive(masterPid)) {
      // Nothing to serve: no process either.
    } else if (!alive(masterPid)) {
      await writeConfig(render(served, next.backends, opts))
      error = await start()
    } else if (nextStructure !== structure) {
      await writeConfig(render(served, next.backends, opts))
      error = await reload()
    } else {
      const problems = await applyCommands(files.admin, runtimeCommands(assignment, next))
      if (problems.length) {
        // The worker's slots may now differ from the assignment (a drain not applied would let
        // an instance stop while it still gets traffic): load the whole state through a reload.
        o.logger.warn({ problems: problems.slice(0, 5) }, 'HAProxy runtime API refused changes; reloading')
        await writeConfig(render(served, next.backends, opts))
        error = await reload()
      }
    }
    if (error) {
      o.logger.error({ error }, 'HAProxy failed')
      structure = ''
    } else {
      assignment = next
      structure = nextStructure
      assignmentPorts = served.flatMap((lb) => lb.listeners.map((l) => l.port))
      owners = new Map(served.flatMap((lb) => lb.backends.map((b) => [backendId(lb.id, b.name), lb.id] as const)))
    }
    return [
      ...served.map((lb): TLbReport => ({ id: lb.id, state: error ? 'error' : 'active', message: error })),
      ...refused.map((lb): TLbReport => ({ id: lb.id, state: 'error', message: `port ${lb.listeners.find((l) => busy.has(l.port))!.port} is in use on this node` })),
    ]
  }
  return {
    name: 'haproxy',
    joinsNetworks: o.namespaces ?? false,
    apply(lbs, netns = new Map()) {
      const run = chain.then(() => apply(lbs, netns))
      chain = run.catch(() => {})
      return run
    },
    async stats() {
      await ready
      if (!alive(masterPid) || !owners.size) return []
      return parseStats(await runtimeApi(files.admin, ['show stat']), owners, assignment)
    },
    async stop() {
      await chain
      if (alive(masterPid)) {
        process.kill(masterPid!, 'SIGTERM')
        for (let i = 0; i < 100 && alive(masterPid); i++) await sleep(20)
      }
      masterPid = null
      structure = ''
    },
  }
}

/**
 * `show stat` (CSV) → per server slot of our backends: sessions open now and HTTP requests
 * (TCP backends: connections) since the worker started.
 */
export function parseStats(csv: string, owners: ReadonlyMap<string, string>, assignment: Assignment): RawServerStat[] {
  const [head, ...rows] = csv.trim().split('\n')
  const cols = (head ?? '').replace(/^# /, '').split(',')
  const at = (name: string) => cols.indexOf(name)
  const [px, sv, scur, stot, req] = [at('pxname'), at('svname'), at('scur'), at('stot'), at('req_tot')]
  const out: RawServerStat[] = []
  for (const row of rows) {
    const f = row.split(',')
    const lbId = owners.get(f[px] ?? '')
    const slot = /^s(\d+)$/.exec(f[sv] ?? '')
    const instanceId = lbId && slot ? assignment.members.get(f[px]!)?.[Number(slot[1])] : null
    if (!lbId || !instanceId) continue
    const requests = req >= 0 && f[req] ? Number(f[req]) : NaN
    out.push({ lbId, instanceId, slot: `${f[px]}/${f[sv]}`, current: Number(f[scur]) || 0, total: Number.isFinite(requests) ? requests : Number(f[stot]) || 0 })
  }
  return out
}
