import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { Writable } from 'node:stream'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { TDesired } from '@alveary/core/protocol'
import { createTools, ToolError, type Tools } from '../src/network/exec'
import { createIsolation } from '../src/network/isolated'
import { netnsPath, overlayNames } from '../src/network/names'
import { freeListenerPort, makeInstance, waitFor } from './helpers'
import { overlayUnavailable } from './netns'

// The isolated namespaces of sandboxed host-networking instances (network/isolated.ts), on the
// machine's own network namespace as an agent builds them: a namespace and its nftables table
// come and go with the desired state, and the pass says what really failed, nothing else.
const skip = overlayUnavailable()

describe.skipIf(skip)('isolated namespaces of host-networking instances', () => {
  const names = overlayNames(`t${randomBytes(2).toString('hex').replace(/^\d/, 'a')}`.slice(0, 4))
  const logged: { level: number; msg: string }[] = []
  const log = pino({ level: 'info' }, new Writable({ write: (chunk, _enc, done) => (logged.push(JSON.parse(String(chunk))), done()) }))
  const isolation = createIsolation({ names, tools: createTools({}), log, resyncMs: 3_600_000 })
  const tableExists = () => {
    try {
      execFileSync('nft', ['list', 'table', 'inet', names.isolatedTable], { stdio: 'ignore' })
      return true
    } catch {
      return false
    }
  }

  let closed = false
  afterAll(async () => {
    if (!closed) await isolation.close(true)
    for (const n of execFileSync('ip', ['netns', 'list']).toString().split('\n').map((l) => l.split(' ')[0]!))
      if (n.startsWith(`${names.prefix}-`)) execFileSync('ip', ['netns', 'del', n])
    if (tableExists()) execFileSync('nft', ['delete', 'table', 'inet', names.isolatedTable])
  })

  it('builds the namespace and its port forwards, then removes both without reporting a failure', async () => {
    const hostPort = await freeListenerPort()
    const inst = makeInstance({ spec: { ports: [{ name: 'http', containerPort: null, hostPort }] } })
    const desired = (instances: TDesired['instances']): TDesired => ({ type: 'desired', generation: 1, instances, networks: [], loadBalancers: [] })

    isolation.apply(desired([inst]))
    const prepared = await isolation.prepare(inst.instanceId)
    await prepared.portsReady
    expect(prepared.netns).toBe(netnsPath(names.isolatedNs(inst.instanceId)))
    expect(existsSync(prepared.netns)).toBe(true)
    expect(tableExists()).toBe(true)

    isolation.apply(desired([]))
    // Once the start has settled (settleMs): a removal is not done beside it.
    await waitFor('the namespace gone', () => !existsSync(prepared.netns))
    // The table stays while it resets connections still headed to the gone address; it goes with the agent.
    expect(tableExists()).toBe(true)
    closed = true
    await isolation.close(true)
    expect(tableExists()).toBe(false)
    // Removing the table is a success too (each removal was logged as "cannot apply the port forwards").
    expect(logged.filter((l) => l.level >= 40).map((l) => l.msg)).toEqual([])
  })
})

describe.skipIf(skip)('isolated namespaces, many at once', () => {
  const names = overlayNames(`u${randomBytes(2).toString('hex').replace(/^\d/, 'a')}`.slice(0, 4))
  const isolation = createIsolation({ names, tools: createTools({}), log: pino({ level: 'silent' }), resyncMs: 3_600_000 })
  afterAll(async () => {
    await isolation.close(true)
    for (const n of execFileSync('ip', ['netns', 'list']).toString().split('\n').map((l) => l.split(' ')[0]!))
      if (n.startsWith(`${names.prefix}-`)) execFileSync('ip', ['netns', 'del', n])
  })

  // A deploy of many replicas to one node: the namespaces come in several passes (a pass once
  // built them all in one script, passed as one argument: E2BIG past ~150), and every start waits for its own.
  it('builds 250 arriving together, each start waiting for its own, and removes them', async () => {
    const instances = Array.from({ length: 250 }, () => makeInstance())
    isolation.apply({ type: 'desired', generation: 1, instances, networks: [], loadBalancers: [] })
    const prepared = await Promise.all(instances.map((i) => isolation.prepare(i.instanceId)))
    expect(prepared.filter((p) => existsSync(p.netns))).toHaveLength(250)
    await isolation.close(true)
    expect(prepared.filter((p) => existsSync(p.netns))).toHaveLength(0)
  }, 180_000)
})

// What a start from the pool waits for: its claim and one change of the table's elements. The
// rest (the leaving namespace's removal, the pool's refill) comes settleMs after the start, so
// the started sandbox is not set up beside namespaces being made and unmade.
describe.skipIf(skip)('isolated namespaces: what a start does not wait for', () => {
  const names = overlayNames(`v${randomBytes(2).toString('hex').replace(/^\d/, 'a')}`.slice(0, 4))
  const isolation = createIsolation({ names, tools: createTools({}), log: pino({ level: 'silent' }), resyncMs: 3_600_000, pool: 1, settleMs: 2000 })
  const ours = () => execFileSync('ip', ['netns', 'list']).toString().split('\n').map((l) => l.split(' ')[0]!).filter((n) => n.startsWith(`${names.prefix}-`))
  const table = () => (JSON.parse(execFileSync('nft', ['-j', 'list', 'table', 'inet', names.isolatedTable]).toString()) as { nftables: Array<{ chain?: { name: string; handle: number } }> }).nftables
  const chains = () => table().flatMap((o) => (o.chain ? [`${o.chain.name}#${o.chain.handle}`] : []))
  const desired = (generation: number, instances: TDesired['instances']): TDesired => ({ type: 'desired', generation, instances, networks: [], loadBalancers: [] })
  afterAll(async () => {
    await isolation.close(true)
    for (const n of ours()) execFileSync('ip', ['netns', 'del', n])
  })

  it('a start claims and forwards; the leaving namespace goes and the pool refills only after settleMs, and the table’s chains stay as they were', async () => {
    const a = makeInstance()
    isolation.apply(desired(1, [a]))
    const aNs = (await isolation.prepare(a.instanceId)).netns
    // The pool is built after the first start has settled.
    await waitFor('the pool', () => isolation.poolFree() === 1, 15_000)
    const before = chains()
    expect(before).toHaveLength(6)

    const hostPort = await freeListenerPort()
    const b = makeInstance({ spec: { ports: [{ name: 'http', containerPort: null, hostPort }] } })
    isolation.apply(desired(2, [b]))
    const bPrepared = await isolation.prepare(b.instanceId)
    const bNs = bPrepared.netns
    await bPrepared.portsReady
    // A pass right after the start (any: a resync, another desired state) leaves a's namespace and the pool alone.
    await isolation.sync()
    expect(ours().map((n) => `/run/netns/${n}`).sort()).toEqual([aNs, bNs].sort())
    expect(isolation.poolFree()).toBe(0)
    // Its port is an element of the table's map; the chains were not made again.
    expect(JSON.stringify(table())).toContain(`[${hostPort},"169.254.`)
    expect(chains()).toEqual(before)

    await waitFor('a’s namespace gone', () => !ours().includes(aNs.slice('/run/netns/'.length)), 15_000)
    await waitFor('the pool refilled', () => isolation.poolFree() === 1, 15_000)
    await isolation.close(true)
    expect(ours()).toEqual([])
  }, 60_000)
})

/**
 * The real tools, with the test in front of some of them: `hold` keeps the calls it matches
 * waiting until `release`; `failing` makes them fail as the tool would.
 */
function gatedTools(match: (cmd: string, args: readonly string[], input?: string) => boolean) {
  const real = createTools({})
  let held: Promise<void> | null = null
  const gate = {
    release: () => {},
    failing: false,
    hold() {
      held = new Promise((r) => (gate.release = r))
    },
  }
  const tools: Tools = {
    async run(cmd, args, input) {
      if (match(cmd, args, input)) {
        await held
        if (gate.failing) throw new ToolError(`${cmd} ${args.join(' ')}`, 'Error: made to fail by the test', 1)
      }
      return real.run(cmd, args, input)
    },
    json: (cmd, args) => real.json(cmd, args),
  }
  return { tools, gate }
}

// A start from the pool waits for its claim only: its port forwards (one nft) are applied beside
// the sandbox's start, and portsReady says when they are in, or that they could not be.
describe.skipIf(skip)('isolated namespaces: port forwards beside the start', () => {
  const names = overlayNames(`x${randomBytes(2).toString('hex').replace(/^\d/, 'a')}`.slice(0, 4))
  const { tools, gate } = gatedTools((cmd, args) => cmd === 'nft' && args[0] === '-f')
  const isolation = createIsolation({ names, tools, log: pino({ level: 'silent' }), resyncMs: 3_600_000, pool: 2, settleMs: 0 })
  const ours = () => execFileSync('ip', ['netns', 'list']).toString().split('\n').map((l) => l.split(' ')[0]!).filter((n) => n.startsWith(`${names.prefix}-`))
  const table = () => execFileSync('nft', ['list', 'table', 'inet', names.isolatedTable]).toString()
  const desired = (generation: number, instances: TDesired['instances']): TDesired => ({ type: 'desired', generation, instances, networks: [], loadBalancers: [] })
  afterAll(async () => {
    gate.release()
    gate.failing = false
    await isolation.close(true)
    for (const n of ours()) execFileSync('ip', ['netns', 'del', n])
  })

  it('a start gets its namespace while nft still runs; portsReady resolves once its port is in, rejects when nft fails', async () => {
    const first = makeInstance()
    isolation.apply(desired(1, [first]))
    await (await isolation.prepare(first.instanceId)).portsReady
    await waitFor('the pool', () => isolation.poolFree() === 2, 15_000)

    gate.hold()
    const hostPort = await freeListenerPort()
    const b = makeInstance({ spec: { ports: [{ name: 'http', containerPort: null, hostPort }] } })
    isolation.apply(desired(2, [first, b]))
    const prepared = await isolation.prepare(b.instanceId)
    expect(existsSync(prepared.netns)).toBe(true)
    let inPlace = false
    void prepared.portsReady.then(() => (inPlace = true))
    expect(table()).not.toContain(`${hostPort} : `)
    expect(inPlace).toBe(false)
    gate.release()
    await prepared.portsReady
    expect(table()).toMatch(new RegExp(`${hostPort} : 169\\.254\\.`))

    // nft fails: the start's ports cannot work, and its start fails; the next pass makes the table whole again.
    gate.failing = true
    const otherPort = await freeListenerPort()
    const c = makeInstance({ spec: { ports: [{ name: 'http', containerPort: null, hostPort: otherPort }] } })
    isolation.apply(desired(3, [first, b, c]))
    const cPrepared = await isolation.prepare(c.instanceId)
    await expect(cPrepared.portsReady).rejects.toThrow('its port forwards could not be applied (nftables)')
    gate.failing = false
    const again = await isolation.prepare(c.instanceId)
    expect(again.netns).toBe(cPrepared.netns)
    await again.portsReady
    expect(table()).toMatch(new RegExp(`${otherPort} : 169\\.254\\.`))
    expect(table()).toMatch(new RegExp(`${hostPort} : 169\\.254\\.`))
  }, 60_000)
})

// Removals run beside the passes: a start served from the pool does not queue behind one (here
// held by the test), and what is being removed is served to nobody.
describe.skipIf(skip)('isolated namespaces: a start beside a removal', () => {
  const names = overlayNames(`y${randomBytes(2).toString('hex').replace(/^\d/, 'a')}`.slice(0, 4))
  const { tools, gate } = gatedTools((cmd, _args, input) => cmd === 'sh' && !!input?.includes('ip netns del') && !input.includes('netns add'))
  const isolation = createIsolation({ names, tools, log: pino({ level: 'silent' }), resyncMs: 3_600_000, pool: 2, settleMs: 0 })
  const ours = () => execFileSync('ip', ['netns', 'list']).toString().split('\n').map((l) => l.split(' ')[0]!).filter((n) => n.startsWith(`${names.prefix}-`))
  const desired = (generation: number, instances: TDesired['instances']): TDesired => ({ type: 'desired', generation, instances, networks: [], loadBalancers: [] })
  afterAll(async () => {
    gate.release()
    await isolation.close(true)
    for (const n of ours()) execFileSync('ip', ['netns', 'del', n])
  })

  it('a start claims from the pool while the namespace of an instance that left is still being removed; that one goes after', async () => {
    const a = makeInstance()
    isolation.apply(desired(1, [a]))
    const aNs = (await isolation.prepare(a.instanceId)).netns
    await waitFor('the pool', () => isolation.poolFree() === 2, 15_000)

    gate.hold()
    // a leaves, b comes: b's pass hands a's namespace to a removal, which is held.
    const b = makeInstance()
    isolation.apply(desired(2, [b]))
    const bNs = (await isolation.prepare(b.instanceId)).netns
    // c comes while it is held: served from the pool at once, not after the removal.
    const c = makeInstance()
    isolation.apply(desired(3, [b, c]))
    const cPrepared = await isolation.prepare(c.instanceId)
    await cPrepared.portsReady
    expect(new Set([aNs, bNs, cPrepared.netns]).size).toBe(3)
    expect(ours()).toContain(aNs.slice('/run/netns/'.length))

    // a comes back while its namespace is being removed (the pool is empty: one is built for it,
    // by the same name): it gets a new one once the removal is done, not the one going away.
    const marked = (ns: string) => execFileSync('ip', ['-n', ns.slice('/run/netns/'.length), '-d', 'link', 'show', 'lo']).toString().includes('alvmark')
    execFileSync('ip', ['-n', aNs.slice('/run/netns/'.length), 'link', 'set', 'lo', 'alias', 'alvmark'])
    expect(marked(aNs)).toBe(true)
    isolation.apply(desired(4, [b, c, a]))
    const again = isolation.prepare(a.instanceId)
    gate.release()
    const aAgain = await again
    await aAgain.portsReady
    expect(existsSync(aAgain.netns)).toBe(true)
    expect(marked(aAgain.netns)).toBe(false)
    expect(new Set([aAgain.netns, bNs, cPrepared.netns]).size).toBe(3)
  }, 60_000)
})

// In the node's own namespace as an agent runs, and in a simulated node (an agent entered with
// `nsenter --net`, as the tests' clusters run them: there sysfs shows another namespace's links).
describe.skipIf(skip).each([{ node: false }, { node: true }])('isolated namespaces from a warm pool (in a simulated node: $node)', ({ node }) => {
  const names = overlayNames(`w${randomBytes(2).toString('hex').replace(/^\d/, 'a')}`.slice(0, 4))
  const nodeNs = `${names.prefix}node`
  const open = () => createIsolation({ names, tools: createTools(node ? { netns: nodeNs } : {}), log: pino({ level: 'silent' }), resyncMs: 3_600_000, pool: 2 })
  const ours = () => execFileSync('ip', ['netns', 'list']).toString().split('\n').map((l) => l.split(' ')[0]!).filter((n) => n.startsWith(`${names.prefix}-`))
  const ip = (args: string[], gone = false) => {
    try {
      return execFileSync('ip', [...(node ? ['-n', nodeNs] : []), ...args], { stdio: 'pipe' }).toString()
    } catch (err) {
      if (gone) return ''
      throw err
    }
  }
  const aliasOf = (netns: string) => (JSON.parse(ip(['-j', '-d', 'link', 'show', 'dev', names.isolatedVeth(netns.slice(`/run/netns/${names.prefix}-s-`.length))])) as Array<{ ifalias?: string }>)[0]?.ifalias
  const desired = (instances: TDesired['instances']): TDesired => ({ type: 'desired', generation: 1, instances, networks: [], loadBalancers: [] })
  let isolation: ReturnType<typeof open>
  beforeAll(() => {
    if (node) execFileSync('ip', ['netns', 'add', nodeNs])
    isolation = open()
  })
  afterAll(async () => {
    await isolation.close(true)
    for (const n of ours()) execFileSync('ip', ['netns', 'del', n])
    // A namespace's veth goes with it, a moment after (the kernel's cleanup of a namespace is deferred): gone meanwhile is fine.
    for (const l of ip(['-o', 'link', 'show']).matchAll(new RegExp(`^\\d+: (${names.prefix}s[0-9a-f]{10})@`, 'gm'))) ip(['link', 'del', l[1]!], true)
    if (node) execFileSync('ip', ['netns', 'del', nodeNs])
  })

  it('a start claims a built namespace (its veth says whose), the pool refills, a restarted agent sees the same, and a node with nothing on it keeps no pool', async () => {
    // Nothing on the node: nothing of ours on the machine, no pool either.
    isolation.apply(desired([]))
    await isolation.sync()
    await isolation.refilled()
    expect(ours()).toEqual([])
    // The first instance gets a namespace built for it; the pool is built once it has started.
    const first = makeInstance()
    isolation.apply(desired([first]))
    const firstNs = (await isolation.prepare(first.instanceId)).netns
    await waitFor('the pool', () => isolation.poolFree() === 2, 15_000)
    const pool = ours().filter((n) => `/run/netns/${n}` !== firstNs)
    expect(pool).toHaveLength(2)

    const hostPort = await freeListenerPort()
    const inst = makeInstance({ spec: { ports: [{ name: 'http', containerPort: null, hostPort }] } })
    isolation.apply(desired([first, inst]))
    const prepared = await isolation.prepare(inst.instanceId)
    await prepared.portsReady
    // One of the pool's, not one built for it (that one would carry its id).
    expect(pool.map((n) => `/run/netns/${n}`)).toContain(prepared.netns)
    expect(aliasOf(prepared.netns)).toBe(inst.instanceId)
    expect(execFileSync(node ? 'ip' : 'nft', [...(node ? ['netns', 'exec', nodeNs, 'nft'] : []), 'list', 'table', 'inet', names.isolatedTable]).toString()).toMatch(new RegExp(`${hostPort} : 169\\.254\\.`))
    await waitFor('the pool', () => isolation.poolFree() === 2, 15_000)
    expect(ours()).toHaveLength(4)

    // The next agent on this data folder reads the machine: the instance keeps its namespace, the pool is not built twice.
    await isolation.close()
    isolation = open()
    isolation.apply(desired([first, inst]))
    expect((await isolation.prepare(inst.instanceId)).netns).toBe(prepared.netns)
    await isolation.refilled()
    expect(isolation.poolFree()).toBe(2)
    expect(ours()).toHaveLength(4)

    // Everything deleted: the pool goes with the last instance.
    isolation.apply({ ...desired([]), generation: 2 })
    await isolation.sync()
    await isolation.refilled()
    expect(ours()).toEqual([])
    await isolation.close(true)
    expect(ours()).toEqual([])
  })
})
