import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { randomBytes, randomUUID } from 'node:crypto'
import { statSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import pino from 'pino'
import type { TDesiredLb, TLbServer } from '@alveary/core/protocol'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createHaproxyPlane, probeHaproxy } from '../src/lb/haproxy/driver'
import type { LbPlane } from '../src/lb/types'
import { freeListenerPort } from './helpers'
import { overlayUnavailable } from './netns'

// HAProxy reaching servers inside a network namespace (as it reaches a tenant network's
// instances from the LB node's namespace, network/overlay/lb-join.ts): the servers' addresses exist only
// in that namespace. Membership, weights and drain change through the runtime API under load
// without a lost request and without a new configuration; a namespace re-created under the same
// name makes HAProxy reload and reach the new one.
const skip = overlayUnavailable()
const probe = skip ? null : await probeHaproxy()
const haveNs = !!probe && probe.ok && probe.namespaces
if (!skip && !haveNs) {
  if (process.env.CI === 'true') throw new Error('haproxy with network namespace support is required in CI')
  console.warn('skipping: no haproxy with network namespace support')
}

const NET = randomUUID()
const IPS = ['100.64.9.2', '100.64.9.3', '100.64.9.4']

describe.skipIf(skip || !haveNs)('HAProxy servers inside a network namespace', () => {
  const ns = `alvlb-${randomBytes(3).toString('hex')}`
  const servers: ChildProcess[] = []
  let plane: LbPlane
  let dir: string
  let port: number
  const ids = IPS.map(() => randomUUID())
  const netns = () => {
    const s = statSync(`/run/netns/${ns}`)
    return new Map([[NET, { name: ns, id: `${s.dev}:${s.ino}` }]])
  }
  /** A namespace with the servers' addresses on its loopback and an HTTP server on each. */
  async function makeNamespace() {
    execFileSync('ip', ['netns', 'add', ns])
    execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up'])
    for (const ip of IPS) execFileSync('ip', ['-n', ns, 'addr', 'add', `${ip}/32`, 'dev', 'lo'])
    for (const ip of IPS) {
      const child = spawn('nsenter', [`--net=/run/netns/${ns}`, '--', process.execPath, '-e', `require('http').createServer((q,r)=>r.end('${ip}')).listen(8080,'${ip}',()=>console.log('ready'))`], { stdio: ['ignore', 'pipe', 'inherit'] })
      await new Promise((resolve, reject) => {
        child.stdout!.once('data', resolve)
        child.once('exit', reject)
      })
      servers.push(child)
    }
  }
  function dropNamespace() {
    for (const s of servers.splice(0)) s.kill('SIGKILL')
    try {
      execFileSync('ip', ['netns', 'del', ns])
    } catch {
      /* gone */
    }
  }
  const server = (k: number, state: TLbServer['state'] = 'ready', weight = 100): TLbServer => ({ id: ids[k]!, address: IPS[k]!, port: 8080, weight, state, networkId: NET })
  const lb = (servers: TLbServer[]): TDesiredLb => ({
    id: NET,
    name: 'web',
    algorithm: 'roundrobin',
    stickySeconds: null,
    drainSeconds: 1,
    listeners: [{ port, protocol: 'http', routes: [{ host: null, pathPrefix: null, backend: 'all' }] }],
    backends: [{ name: 'all', servers }],
  })
  // A new connection each: after a reload, the old worker answers the next request of an idle keep-alive one.
  const get = () =>
    new Promise<string>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port, agent: false }, (r) => {
        let b = ''
        r.on('data', (d) => (b += d))
        r.on('end', () => (r.statusCode === 200 ? resolve(b) : reject(new Error(`status ${r.statusCode}: ${b}`))))
      }).on('error', reject)
    })
  const spread = async (n: number) => {
    const seen: Record<string, number> = {}
    for (let i = 0; i < n; i++) {
      const who = await get()
      seen[who] = (seen[who] ?? 0) + 1
    }
    return seen
  }
  /** Keep-alive clients until stop(); every failed request counts (none is retried). */
  function load(clients = 8) {
    let running = true
    let ok = 0
    const failures: string[] = []
    const loops = Array.from({ length: clients }, async () => {
      const own = new http.Agent({ keepAlive: true, maxSockets: 1 })
      while (running)
        await new Promise<void>((resolve) => {
          http
            .get({ host: '127.0.0.1', port, agent: own }, (r) => {
              r.resume()
              r.on('end', () => (r.statusCode === 200 ? ok++ : failures.push(`status ${r.statusCode}`), resolve()))
            })
            .on('error', (e) => (failures.push(e.message), resolve()))
        })
      own.destroy()
    })
    return {
      async flowed(n = 100) {
        const from = ok
        const end = Date.now() + 60_000
        while (ok < from + n && !failures.length && Date.now() < end) await new Promise((r) => setTimeout(r, 20))
      },
      async stop() {
        running = false
        await Promise.all(loops)
        return { ok, failures }
      },
    }
  }

  beforeAll(async () => {
    await makeNamespace()
    dir = await mkdtemp(path.join(os.tmpdir(), 'alveary-lb-netns-'))
    port = await freeListenerPort()
    plane = createHaproxyPlane({ dir, logger: pino({ level: 'silent' }), namespaces: true })
  })
  afterAll(async () => {
    await plane?.stop()
    dropNamespace()
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  it('reaches addresses that exist only in the namespace; a server whose network is not joined is down', async () => {
    expect(await plane.apply([lb([server(0), server(1)])], netns())).toEqual([{ id: NET, state: 'active', message: null }])
    expect(Object.keys(await spread(10)).sort()).toEqual([IPS[0], IPS[1]])
    // Without the namespace the same servers are down: nothing to answer.
    await plane.apply([lb([server(0), server(1)])], new Map())
    await expect(get()).rejects.toThrow(/503/)
    await plane.apply([lb([server(0), server(1)])], netns())
    expect(Object.keys(await spread(10)).sort()).toEqual([IPS[0], IPS[1]])
  })

  it('changes membership, weights and drain through the runtime API under load: no lost request, same configuration', async () => {
    const cfg = path.join(dir, 'haproxy.cfg')
    await plane.apply([lb([server(0), server(1)])], netns())
    const before = await readFile(cfg, 'utf8')
    const gen = load()
    for (const servers of [
      [server(0), server(1), server(2)],
      [server(0, 'ready', 10), server(1, 'ready', 200), server(2)],
      [server(0, 'drain'), server(1), server(2)],
      [server(1), server(2)],
      [server(0), server(2, 'down')],
    ]) {
      await plane.apply([lb(servers)], netns())
      await gen.flowed()
    }
    const { ok, failures } = await gen.stop()
    expect(failures).toEqual([])
    expect(ok).toBeGreaterThan(400)
    expect(await readFile(cfg, 'utf8')).toBe(before)
    expect(await spread(6)).toEqual({ [IPS[0]!]: 6 })
  }, 120_000)

  it('reloads to reach a namespace re-created under the same name', async () => {
    const cfg = path.join(dir, 'haproxy.cfg')
    await plane.apply([lb([server(0)])], netns())
    const before = await readFile(cfg, 'utf8')
    dropNamespace()
    await makeNamespace()
    expect(await plane.apply([lb([server(0)])], netns())).toEqual([{ id: NET, state: 'active', message: null }])
    expect(await readFile(cfg, 'utf8')).not.toBe(before)
    expect(await spread(4)).toEqual({ [IPS[0]!]: 4 })
  }, 60_000)
})
