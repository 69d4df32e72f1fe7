/**
 * A network namespace of its own for every sandboxed process instance on host networking (no
 * tenant network): `<p>-s-<id>` with eth0, a point-to-point veth to the node (169.254.0.1 on
 * the node's side, a link-local address of the pool on the instance's), its published ports
 * DNAT-ed from the node's host ports to the same port inside. So its 127.0.0.1 is its own: the
 * node's loopback services (agent, BFF, PostgreSQL) are out of reach, and so is everything
 * else of the node (isolated-plan.ts has the rules). Level-triggered like the overlay: every
 * pass observes what exists, builds what is missing and removes what nothing needs.
 *
 * Building one is most of a start's wait (~55 ms of processes on a quiet node: `ip netns add`,
 * the veth, `ip -n` inside, the node side, nft), so a few are built ahead (isolated-pool.ts). A
 * start claims one (no process) and its port forwards go into the table's map (one nft) beside
 * the sandbox's own start: `portsReady` says when, and the start is complete only then. A burst
 * beyond the pool builds namespaces named by their instance, as before. What no start waits for
 * (removals, the pool's refill: ~10 processes and the kernel's making and unmaking of namespaces)
 * waits until the starts have run (on the 2-core dev machine at load 28 a start beside it took
 * 1.6× as long), and then runs beside the passes: a start arriving meanwhile does not queue behind it.
 */
import { readdir, writeFile } from 'node:fs/promises'
import type { Logger } from 'pino'
import type { TDesired, TDesiredInstance } from '@alveary/core/protocol'
import type { Tools } from './exec'
import { isUp, type IpLink } from './links'
import { inPool, pickAddress, renderActions, renderElements, renderTableChange, type IsolatedForward } from './isolated-plan'
import { createPool, ownerOf, type Seen } from './isolated-pool'
import { resolvConfFor } from './isolated-probe'
import { createSettle, SETTLE_MS } from './isolated-settle'
import { NODE_TRANSIT_IP, netnsPath, type OverlayNames } from './names'
import { createPassLoop } from './passes'

/** Which instances get one: process instances without a tenant network. */
export const isolates = (i: TDesiredInstance) => i.spec.driver === 'process' && i.interfaces.length === 0

/**
 * Namespaces built per pass at the most: a pass stays short (its script runs under the tools'
 * timeout) when hundreds of instances arrive at once; the rest follow in the passes right after.
 */
const MAX_CREATES_PER_PASS = 32
/** The same for removals (two processes each): 250 in one script ran past the timeout at load ~25 and left 85. */
const MAX_REMOVALS_PER_PASS = 32
/** Gone addresses remembered at most, and how long connections to one are reset. */
const MAX_GONE = 4096
const GONE_RESET_MS = 30_000
/** What a start's port forwards wait for when the table could not be changed. */
const TABLE_FAILED = 'its port forwards could not be applied (nftables)'

/**
 * `pool`: namespaces kept built and free (veth, addresses, routes ready), so that a start only
 * claims one (its veth's alias) and its port forwards follow (one nft). The pool is refilled in
 * the background once the latest start has settled (isolated-settle.ts). 0 (cleanup, tests): every namespace is built for its instance.
 * The pool is kept only while the node has instances: a node with nothing on it keeps nothing
 * of ours on the machine (deleting everything leaves no namespaces behind).
 */
export function createIsolation(opts: { names: OverlayNames; tools: Tools; log: Logger; resyncMs?: number; pool?: number; settleMs?: number }) {
  const { names, tools, log } = opts
  const resyncMs = opts.resyncMs ?? 10_000
  const settleMs = opts.settleMs ?? SETTLE_MS
  let poolSize = opts.pool ?? 0
  /** The pool's size now: poolSize while the node has instances, else 0. */
  let poolTarget = 0
  /** Instance id → its address, as of the last pass; failures with why. */
  const ready = new Map<string, string>()
  const failed = new Map<string, string>()
  /** Wanted, not built yet, left for the next pass (MAX_CREATES_PER_PASS): not a failure. */
  let deferred = new Set<string>()
  /**
   * What exists, as of the last look at the node plus this agent's own changes since, and our
   * links. Looked at again every resyncMs (what others did: another agent's addresses, a manual
   * `ip netns del`); a start in between does not wait for that.
   */
  const seen: Seen = { netns: new Set(), used: new Set(), whole: new Map(), owners: new Map() }
  const { netns, used, whole, owners } = seen
  /**
   * Addresses of namespaces deleted, with when (oldest first): connections still headed there
   * are reset for GONE_RESET_MS — long enough for a client's retransmissions to hear it — and
   * then the rules go, so a node with nothing isolated left has no table of ours.
   */
  const gone = new Map<string, number>()
  /** Namespaces being removed (removals run beside the passes) → their addresses. */
  const removing = new Map<string, string | undefined>()
  let removals: Promise<void> = Promise.resolve()
  /** Published ports per instance, kept while a leaving instance still runs. */
  const forwardsOf = new Map<string, IsolatedForward[]>()
  let links: string[] = []
  let observedAt = -Infinity
  /** A full pass saw links that no namespace needs; the next pass that removes takes them. */
  let linksDue = false
  // The table's elements last applied (null: no table); undefined: unknown after a failure, so the next pass makes it again.
  let applied: string | null | undefined = null
  /** The latest pass's change of the table: the port forwards of the starts it decided are in once it resolves. */
  let tableChange: Promise<void> = Promise.resolve()
  /** That change failed: a start asks for another pass (which makes the table whole again). */
  let tableFailed = false
  let forwarding = false
  // Looked up at the first instance's start (`alveary-agent cleanup` builds no namespace: nothing to warn about).
  let resolvConf: ReturnType<typeof resolvConfFor> | undefined
  /** Passes up to this number have decided every start they saw (ready or failed); their removals may still run. */
  let decided = 0
  const decidedWaiters: Array<{ want: number; resolve(): void }> = []
  let closing = false
  /** A look at the machine and a pool namespace's build take turns: a look in the middle of a build would misjudge it as broken. */
  let machine: Promise<unknown> = Promise.resolve()
  const inTurn = <T>(fn: () => Promise<T>): Promise<T> => {
    const turn = machine.catch(() => {}).then(fn)
    machine = turn
    return turn
  }

  /** The whole namespace serving an instance. */
  const nsOf = (instanceId: string): string | undefined => {
    for (const [ns, owner] of owners) if (owner === instanceId && whole.has(ns)) return ns
    return undefined
  }
  const pool = createPool({
    names,
    tools,
    log,
    seen,
    target: () => (closing ? 0 : poolTarget),
    inTurn,
    runScript,
    onBroken: () => {
      observedAt = -Infinity
    },
  })
  const freePool = pool.free

  const observe = () => inTurn(look)
  async function look(): Promise<void> {
    const found = (await readdir('/run/netns').catch(() => [] as string[])).filter((n) => names.parseIsolatedNs(n) !== null)
    // -d: with each link's alias (whose a namespace is).
    const all = await tools.json<IpLink[]>('ip', ['-j', '-d', 'addr', 'show'])
    netns.clear()
    for (const n of found) netns.add(n)
    used.clear()
    for (const ip of all.flatMap((l) => (l.addr_info ?? []).flatMap((a) => [a.local, a.address ?? ''])).filter(inPool)) used.add(ip)
    for (const ip of used) gone.delete(ip)
    links = all.map((l) => l.ifname).filter((l) => names.isIsolatedVeth(l))
    const byName = new Map(all.map((l) => [l.ifname, l]))
    whole.clear()
    owners.clear()
    for (const n of netns) {
      const id = names.parseIsolatedNs(n)!
      const veth = names.isolatedVeth(id)
      const node = byName.get(veth)
      owners.set(id, ownerOf(id, node?.ifalias ?? ''))
      const addr = node?.addr_info?.find((a) => a.family === 'inet' && a.local === NODE_TRANSIT_IP)?.address
      // The node side gets its address last: with it, the inside was finished (by us, or by the agent before us).
      if (node && addr && inPool(addr) && isUp(node)) whole.set(id, addr)
    }
    observedAt = Date.now()
  }

  function markDecided(n: number): void {
    decided = Math.max(decided, n)
    for (const w of decidedWaiters.splice(0)) {
      if (w.want <= decided) w.resolve()
      else decidedWaiters.push(w)
    }
  }
  /** Resolves once pass n has decided its starts (or has ended: one without a desired state decides nothing). */
  const whenDecided = (n: number): Promise<void> =>
    decided >= n || closing ? Promise.resolve() : Promise.race([new Promise<void>((resolve) => decidedWaiters.push({ want: n, resolve })), passes.until(n)])

  async function pass(d: TDesired, n: number): Promise<void> {
    try {
      await reconcile(d, n)
    } finally {
      markDecided(n)
    }
  }

  async function reconcile(d: TDesired, n: number): Promise<void> {
    const wanted = d.instances.filter(isolates)
    poolTarget = d.instances.length ? poolSize : 0
    for (const [ip, at] of gone) if (Date.now() - at >= GONE_RESET_MS) gone.delete(ip)
    // A namespace to build looks at the machine first: the address is picked from the instance id,
    // and the same instance may have just left another agent on this machine (a move, a lost node)
    // whose namespace still holds that address; two veths routing one address lose its traffic.
    // Claiming one of the pool's needs no look: it was built with an address nobody had.
    // A start the pool cannot serve now waits for the namespace it is building (begun, or next in
    // turn) rather than for a look queued behind that build and then a build of its own.
    if (wanted.filter((i) => !nsOf(i.instanceId)).length > freePool().length) await pool.inFlight()
    const missingNow = wanted.filter((i) => !nsOf(i.instanceId)).length
    // Nor does a resync (the look, the table made again) come before starts served from the pool: the pass after them does it.
    const full = Date.now() - observedAt >= resyncMs && !(missingNow > 0 && missingNow <= freePool().length)
    // Where a start's wait goes (debug log): the look at the machine, the build and forwards, the removals after.
    const t0 = performance.now()
    if (full || missingNow > freePool().length) await observe()
    const t1 = performance.now()
    if (wanted.length && !forwarding) {
      // Published ports from other machines are forwarded to the namespaces.
      await writeFile('/proc/sys/net/ipv4/ip_forward', '1')
      forwarding = true
    }
    const free = freePool()
    const create: Array<{ instanceId: string; ip: string; replace: boolean }> = []
    const missing = wanted.filter((i) => !nsOf(i.instanceId))
    let claimed = 0
    for (const inst of missing) {
      const ns = free.shift()
      if (ns === undefined) break
      if (await pool.claim(ns, inst.instanceId)) claimed++
    }
    // One whose namespace of that name is being removed (it left and came back) is built once that is done.
    const toBuild = missing.filter((i) => !nsOf(i.instanceId) && !removing.has(i.instanceId))
    const afterRemoval = missing.filter((i) => removing.has(i.instanceId))
    deferred = new Set([...toBuild.slice(MAX_CREATES_PER_PASS), ...afterRemoval].map((i) => i.instanceId))
    for (const inst of toBuild.slice(0, MAX_CREATES_PER_PASS)) {
      const ip = pickAddress(inst.instanceId, used)
      used.add(ip)
      gone.delete(ip)
      create.push({ instanceId: inst.instanceId, ip, replace: netns.has(names.isolatedNs(inst.instanceId)) })
    }
    const addrOf = (id: string) => whole.get(nsOf(id) ?? '') ?? create.find((c) => c.instanceId === id)?.ip
    const keep = new Set(wanted.map((i) => i.instanceId))
    for (const i of wanted) {
      const ip = addrOf(i.instanceId)
      if (ip) forwardsOf.set(i.instanceId, i.spec.ports.flatMap((p) => (p.hostPort ? [{ hostPort: p.hostPort, ip }] : [])))
    }
    // What stays: each wanted instance's namespace (built now or before), the pool's free ones up to
    // its size. Everything else of ours goes: namespaces of instances no longer desired — once
    // their process has gone (its stop grace), as it would on the node's network: their namespace
    // and forwards stay while anything runs in them — broken ones, and the pool's beyond its size.
    const stays = new Set([...wanted.flatMap((i) => nsOf(i.instanceId) ?? []), ...create.map((c) => c.instanceId), ...freePool().slice(0, poolTarget)])
    const leavingNs = [...netns].map((x) => names.parseIsolatedNs(x)!).filter((id) => !stays.has(id))
    const leaving = [...new Set(leavingNs.flatMap((id) => owners.get(id) ?? (owners.has(id) ? [] : id)))].filter((id) => !keep.has(id))
    // A port the node handed on (from a stopped or leaving instance to a new one) is the running
    // instance's, then a stopped one's, then a leaving one's (the table takes the first per port).
    const order = [...wanted.filter((i) => i.desiredState === 'running'), ...wanted.filter((i) => i.desiredState !== 'running')].map((i) => i.instanceId).concat(leaving)
    const forwards = order.flatMap((id) => forwardsOf.get(id) ?? [])
    // Resets for gone instances, and already for leaving ones: the rule holds only once their veth is gone.
    const served = leavingNs.flatMap((id) => (owners.get(id) === null ? [] : (whole.get(id) ?? removing.get(id) ?? [])))
    const resets = [...new Set([...gone.keys(), ...served])]
    const elements = wanted.length || resets.length ? renderElements(names, forwards, resets) : null
    // Made again on a full pass (someone may have flushed the ruleset); else only its elements change.
    const nft = renderTableChange(names, elements, applied, full)

    // First what starts wait for: the namespaces to build (the table's change in the same script).
    const out = create.length ? await runScript(renderActions(names, { create, ...(nft !== undefined && { nft }), removeIds: [], removeLinks: [] })) : ''
    const tBuilt = performance.now()
    const lines = out.split('\n')
    for (const c of create) {
      netns.add(names.isolatedNs(c.instanceId))
      owners.set(c.instanceId, c.instanceId)
      if (lines.includes(`ok ${c.instanceId}`)) {
        whole.set(c.instanceId, c.ip)
        log.info({ instanceId: c.instanceId, ip: c.ip }, 'network: isolated namespace created')
      } else {
        const why = lines.find((l) => l.startsWith(`fail ${c.instanceId}`))?.slice(42).trim()
        log.warn({ instanceId: c.instanceId, err: why ?? 'the pass failed' }, 'network: cannot build an isolated namespace')
      }
    }
    // Only the forwards (every start that claimed from the pool): nft itself, no shell, and beside
    // the starts, which are decided before it: a port only has to work once the app listens, and a
    // start is complete (reported running) only once its forwards are in (portsReady).
    const tableOut = nft === undefined ? null : create.length ? Promise.resolve(out) : tools.run('nft', ['-f', '-'], nft).then(() => 'table 0', (err: Error) => `table 1 ${err.message}`)
    const changed = (tableOut ?? Promise.resolve(null)).then((o) => {
      if (o === null) return true
      // Success is the status nft printed, not what was applied: removing the table (null) succeeds too.
      const ok = /^table 0/m.test(o)
      applied = ok ? elements : undefined
      if (!ok) log.warn({ err: o.split('\n').find((l) => l.startsWith('table '))?.slice(6) ?? 'the pass failed' }, 'network: cannot apply the isolated namespaces’ port forwards')
      return ok
    })
    tableChange = changed.then((ok) => {
      if (!ok) throw new Error(TABLE_FAILED)
    })
    // Its starts may have gone meanwhile (nobody waits for it): not an unhandled rejection.
    tableChange.catch(() => {})
    if (claimed) log.info({ claimed, free: freePool().length }, 'network: isolated namespaces taken from the pool')
    ready.clear()
    failed.clear()
    for (const i of wanted) {
      if (deferred.has(i.instanceId)) continue
      const addr = addrOf(i.instanceId)
      if (addr && whole.has(nsOf(i.instanceId) ?? '')) ready.set(i.instanceId, addr)
      else failed.set(i.instanceId, 'its network namespace could not be built (see the agent log)')
    }
    markDecided(n)
    // The next pass builds on the table as it is: it comes after this change (and a failed one makes the table whole again).
    tableFailed = !(await changed)
    if (tableFailed) observedAt = -Infinity
    const t2 = performance.now()
    // Something failed: look again at the next pass, not after resyncMs.
    if (failed.size) observedAt = -Infinity
    if (toBuild.length > MAX_CREATES_PER_PASS) setTimeout(() => passes.kick(), 0).unref()
    linksDue ||= full

    if (claimed || create.length) {
      settle.handedOut(t2, t2 - tBuilt)
      log.debug({ observeMs: Math.round(t1 - t0), startsMs: Math.round(t2 - t1), claimed, built: create.length }, 'network: isolated namespaces pass')
    }
    // Then what nothing waits for, once the starts handed out have run (a pass then does it): removals, and the pool's refill (in the background).
    if (!closing && !settle.due(performance.now())) return
    // The refill first (in turn with the removals below): the next start waits for the pool, nobody for a removal.
    pool.refill()
    // Beside the passes (a start does not queue behind ~2 processes per namespace), in turn with the pool's builds and the looks.
    const removeIds = leavingNs.filter((id) => !removing.has(id)).slice(0, MAX_REMOVALS_PER_PASS)
    const keepLinks = new Set([...[...netns].map((x) => names.parseIsolatedNs(x)!), ...pool.building].map((id) => names.isolatedVeth(id)))
    const removeLinks = linksDue ? links.filter((l) => !keepLinks.has(l)) : []
    linksDue = false
    if (removeIds.length || removeLinks.length) {
      // No start is served one of them meanwhile: they are no longer whole (their addresses still get resets).
      for (const id of removeIds) {
        removing.set(id, whole.get(id))
        whole.delete(id)
      }
      const more = leavingNs.length > removeIds.length
      removals = inTurn(() => remove(removeIds, removeLinks, more)).catch((err) => log.warn({ err }, 'network: removing isolated namespaces failed'))
    }
  }

  /** Deletes namespaces no instance needs (each once nothing runs in it) and links, then says what is gone. */
  async function remove(ids: string[], removeLinks: string[], more: boolean): Promise<void> {
    const t = performance.now()
    const removed = (await runScript(renderActions(names, { create: [], removeIds: ids, removeLinks }))).split('\n')
    const keep = new Set(passes.current()?.instances.map((i) => i.instanceId))
    const deleted: string[] = []
    for (const id of ids) {
      const addr = removing.get(id)
      removing.delete(id)
      // Still in use (its instance's stop grace): whole again, it goes at a later pass.
      if (!removed.includes(`gone ${names.isolatedNs(id)}`)) {
        if (addr) whole.set(id, addr)
        continue
      }
      deleted.push(names.isolatedNs(id))
      const owner = owners.get(id)
      if (addr && owner !== null) gone.set(addr, Date.now())
      netns.delete(names.isolatedNs(id))
      owners.delete(id)
      if (owner && !keep.has(owner)) forwardsOf.delete(owner)
    }
    while (gone.size > MAX_GONE) gone.delete(gone.keys().next().value!)
    if (deleted.length) log.info({ netns: deleted }, 'network: isolated namespaces no longer needed, deleted')
    // One still in use goes at a later pass: soon, not after resyncMs.
    if (deleted.length < ids.length) setTimeout(() => passes.kick(), 1000).unref()
    // More to remove than one pass takes: the next pass right away.
    else if (more) setTimeout(() => passes.kick(), 0).unref()
    if (ids.length) log.debug({ removeMs: Math.round(performance.now() - t) }, 'network: isolated namespaces removed')
  }

  async function runScript(script: string): Promise<string> {
    if (!script) return ''
    try {
      // The script on stdin, read whole before it runs: as one argument it hit the kernel's
      // 128 KiB limit per argument (E2BIG) once ~150 namespaces were built in one pass.
      return await tools.run('sh', ['-c', 'eval "$(cat)"'], script)
    } catch (err) {
      log.warn({ err }, 'network: isolated namespaces: the pass failed')
      return ''
    }
  }

  const passes = createPassLoop(pass, log, 'isolated namespaces')
  const settle = createSettle(settleMs, () => passes.kick())
  const timer = setInterval(() => passes.kick(), resyncMs)
  timer.unref()

  return {
    apply: (d: TDesired) => passes.set(d),
    /**
     * The instance's namespace, ready (after a pass that saw it, if none has yet); `portsReady`
     * resolves once its port forwards are in too (they are applied beside the start), rejects if they cannot be.
     */
    async prepare(instanceId: string): Promise<{ netns: string; resolvConf?: string; portsReady: Promise<void> }> {
      // The pass of the latest desired state (its ports) first; another only if that one did not see it.
      await whenDecided(passes.latest())
      // Its turn comes in a later pass (every pass builds some of the missing ones).
      for (let k = 0; deferred.has(instanceId) && k < 64; k++) {
        if (removing.has(instanceId)) await removals
        await whenDecided(passes.kick())
      }
      if (!ready.has(instanceId) || tableFailed) await whenDecided(passes.kick())
      // The change of the pass that decided it (or of a later one, which has its forwards too).
      const portsReady = tableChange
      const ns = nsOf(instanceId)
      if (!ready.has(instanceId) || !ns) throw new Error(failed.get(instanceId) ?? 'the instance is not in the desired state')
      const resolv = await (resolvConf ??= resolvConfFor(log))
      return { netns: netnsPath(names.isolatedNs(ns)), ...(resolv && { resolvConf: resolv }), portsReady }
    },
    /** Resolves after a full pass that started after this call, and the removals it handed on. */
    async sync(): Promise<void> {
      await passes.until(passes.kick())
      await removals
    },
    /** Free namespaces of the pool, built and not claimed. */
    poolFree: () => freePool().length,
    /** Resolves once no refill of the pool runs. */
    refilled: () => pool.refilled(),
    /** Stops; with `remove`, once every instance has stopped, takes its namespaces (the pool's too) and rules away. */
    async close(remove = false): Promise<void> {
      clearInterval(timer)
      closing = true
      await pool.refilled()
      if (remove) {
        poolSize = 0
        passes.set({ type: 'desired', generation: 0, instances: [], networks: [], loadBalancers: [] })
        await passes.until(passes.latest())
        await removals
        // A pass removes MAX_REMOVALS_PER_PASS, and a removal can fail for a moment on a busy node
        // (seen at load ~25: 85 of 250 left after one pass): the passes after it go on, as they
        // would in a running agent.
        for (let k = 0; k < 20 && netns.size > 0; k++) {
          await new Promise((r) => setTimeout(r, 250))
          await passes.until(passes.kick())
          await removals
        }
        // Nothing of the node's instances is left to reset connections to: the table goes too.
        gone.clear()
        await passes.until(passes.kick())
        if (netns.size) log.warn({ netns: [...netns] }, 'network: isolated namespaces still there after stopping; alveary-agent cleanup removes them')
      }
      await passes.close()
      await removals
      for (const w of decidedWaiters.splice(0)) w.resolve()
    },
  }
}
export type Isolation = ReturnType<typeof createIsolation>
