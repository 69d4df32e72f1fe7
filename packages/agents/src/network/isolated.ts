/**
 * A network namespace of its own for every sandboxed process instance on host networking (no
 * tenant network): `<p>-s-<id>` with eth0, a point-to-point veth to the node (169.254.0.1 on
 * the node's side, a link-local address of the pool on the instance's), its published ports
 * DNAT-ed from the node's host ports to the same port inside. So its 127.0.0.1 is its own: the
 * node's loopback services (agent, BFF, PostgreSQL) are out of reach, and so is everything
 * else of the node (isolated-plan.ts has the rules). Level-triggered like the overlay: every
 * pass observes what exists, builds what is missing and removes what nothing needs.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises'
import type { Logger } from 'pino'
import type { TDesired, TDesiredInstance } from '@alveary/core/protocol'
import type { Tools } from './exec'
import { isUp, type IpLink } from './links'
import { inPool, pickAddress, renderActions, renderIsolatedTable, type IsolatedForward } from './isolated-plan'
import { NODE_TRANSIT_IP, netnsPath, type OverlayNames } from './names'
import { upstreamsOf } from './dns/responder'
import { createPassLoop } from './passes'

/** Which instances get one: process instances without a tenant network. */
export const isolates = (i: TDesiredInstance) => i.spec.driver === 'process' && i.interfaces.length === 0

export type IsolationProbe = { ok: true } | { ok: false; reason: string }

/** Root, iproute2, nftables and sysctl: what a namespace and its port forwards need. */
export async function probeIsolation(tools: Tools): Promise<IsolationProbe> {
  if (process.getuid?.() !== 0) return { ok: false, reason: 'the agent is not root' }
  for (const [tool, args] of [['ip', ['-V']], ['nft', ['--version']], ['sysctl', ['--version']]] as const) {
    try {
      await tools.run(tool, args)
    } catch {
      return { ok: false, reason: `${tool} is missing (install iproute2, nftables and procps)` }
    }
  }
  try {
    await tools.run('nft', ['list', 'tables'])
  } catch (err) {
    return { ok: false, reason: `cannot read nftables: ${(err as Error).message}` }
  }
  return { ok: true }
}

/**
 * The node's resolvers as an isolated instance can reach them: /etc/resolv.conf when it names
 * one off loopback; systemd-resolved's list of upstreams when the node's is its 127.0.0.53 stub.
 */
async function resolvConfFor(log: Logger): Promise<string | undefined> {
  const own = await readFile('/etc/resolv.conf', 'utf8').catch(() => '')
  if (upstreamsOf(own).some((ip) => !ip.startsWith('127.'))) return undefined
  const resolved = '/run/systemd/resolve/resolv.conf'
  if (upstreamsOf(await readFile(resolved, 'utf8').catch(() => '')).length) return resolved
  log.warn('network: the node resolves names through loopback only; sandboxed instances on host networking cannot resolve names')
  return undefined
}

/**
 * Namespaces built per pass at the most: a pass stays short (its script runs under the tools'
 * timeout) when hundreds of instances arrive at once; the rest follow in the passes right after.
 */
const MAX_CREATES_PER_PASS = 32
/** Gone addresses remembered at most, and how long connections to one are reset. */
const MAX_GONE = 4096
const GONE_RESET_MS = 30_000

export function createIsolation(opts: { names: OverlayNames; tools: Tools; log: Logger; resyncMs?: number }) {
  const { names, tools, log } = opts
  const resyncMs = opts.resyncMs ?? 10_000
  /** Instance id → its address, as of the last pass; failures with why. */
  const ready = new Map<string, string>()
  const failed = new Map<string, string>()
  /** Wanted, not built yet, left for the next pass (MAX_CREATES_PER_PASS): not a failure. */
  let deferred = new Set<string>()
  /**
   * What exists, as of the last look at the node plus this agent's own changes since: namespaces
   * known whole (instance id → address), pool addresses in use on this machine, our namespaces
   * and links. Looked at again every resyncMs (what others did: another agent's addresses, a
   * manual `ip netns del`); a start in between does not wait for that.
   */
  const whole = new Map<string, string>()
  /**
   * Addresses of namespaces deleted, with when (oldest first): connections still headed there
   * are reset for GONE_RESET_MS — long enough for a client's retransmissions to hear it — and
   * then the rules go, so a node with nothing isolated left has no table of ours.
   */
  const gone = new Map<string, number>()
  /** Published ports per instance, kept while a leaving instance still runs. */
  const forwardsOf = new Map<string, IsolatedForward[]>()
  let used = new Set<string>()
  let netns = new Set<string>()
  let links: string[] = []
  let observedAt = -Infinity
  // The table last applied (null: none); undefined: unknown after a failure, so the next pass applies again.
  let applied: string | null | undefined = null
  let forwarding = false
  // Looked up at the first instance's start (`alveary-agent cleanup` builds no namespace: nothing to warn about).
  let resolvConf: ReturnType<typeof resolvConfFor> | undefined

  async function observe(): Promise<void> {
    netns = new Set((await readdir('/run/netns').catch(() => [] as string[])).filter((n) => names.parseIsolatedNs(n) !== null))
    const all = await tools.json<IpLink[]>('ip', ['-j', 'addr', 'show'])
    used = new Set(all.flatMap((l) => (l.addr_info ?? []).flatMap((a) => [a.local, a.address ?? ''])).filter(inPool))
    for (const ip of used) gone.delete(ip)
    links = all.map((l) => l.ifname).filter((l) => names.isIsolatedVeth(l))
    const byName = new Map(all.map((l) => [l.ifname, l]))
    whole.clear()
    for (const n of netns) {
      const id = names.parseIsolatedNs(n)!
      const node = byName.get(names.isolatedVeth(id))
      const addr = node?.addr_info?.find((a) => a.family === 'inet' && a.local === NODE_TRANSIT_IP)?.address
      // The node side gets its address last: with it, the inside was finished (by us, or by the agent before us).
      if (node && addr && inPool(addr) && isUp(node)) whole.set(id, addr)
    }
    observedAt = Date.now()
  }

  async function pass(d: TDesired): Promise<void> {
    const wanted = d.instances.filter(isolates)
    for (const [ip, at] of gone) if (Date.now() - at >= GONE_RESET_MS) gone.delete(ip)
    const full = Date.now() - observedAt >= resyncMs
    // A namespace to build looks at the machine first: the address is picked from the instance id,
    // and the same instance may have just left another agent on this machine (a move, a lost node)
    // whose namespace still holds that address; two veths routing one address lose its traffic.
    if (full || wanted.some((i) => !whole.has(i.instanceId))) await observe()
    if (wanted.length && !forwarding) {
      // Published ports from other machines are forwarded to the namespaces.
      await writeFile('/proc/sys/net/ipv4/ip_forward', '1')
      forwarding = true
    }
    const create: Array<{ instanceId: string; ip: string; replace: boolean }> = []
    const missing = wanted.filter((i) => !whole.has(i.instanceId))
    deferred = new Set(missing.slice(MAX_CREATES_PER_PASS).map((i) => i.instanceId))
    for (const inst of missing.slice(0, MAX_CREATES_PER_PASS)) {
      const ip = pickAddress(inst.instanceId, used)
      used.add(ip)
      gone.delete(ip)
      create.push({ instanceId: inst.instanceId, ip, replace: netns.has(names.isolatedNs(inst.instanceId)) })
    }
    const addrOf = new Map([...whole, ...create.map((c) => [c.instanceId, c.ip] as const)])
    const keep = new Set(wanted.map((i) => i.instanceId))
    for (const i of wanted) {
      const ip = addrOf.get(i.instanceId)
      if (ip) forwardsOf.set(i.instanceId, i.spec.ports.flatMap((p) => (p.hostPort ? [{ hostPort: p.hostPort, ip }] : [])))
    }
    // An instance no longer desired serves until its process has gone (its stop grace), as it would
    // on the node's network: its namespace and forwards stay while anything runs in it.
    const leaving = [...netns].map((n) => names.parseIsolatedNs(n)!).filter((id) => !keep.has(id))
    // A port the node handed on (from a stopped or leaving instance to a new one) is the running
    // instance's, then a stopped one's, then a leaving one's (the table takes the first per port).
    const order = [...wanted.filter((i) => i.desiredState === 'running'), ...wanted.filter((i) => i.desiredState !== 'running')].map((i) => i.instanceId).concat(leaving)
    const forwards = order.flatMap((id) => forwardsOf.get(id) ?? [])
    // Resets for gone instances, and already for leaving ones: the rule holds only once their veth is gone.
    const resets = [...new Set([...gone.keys(), ...leaving.flatMap((id) => (whole.has(id) ? [whole.get(id)!] : []))])]
    const body = wanted.length || resets.length ? renderIsolatedTable(names, forwards, resets) : null
    const removeNs = leaving.map((id) => names.isolatedNs(id))
    const keepLinks = new Set([...wanted.map((i) => i.instanceId), ...leaving].map((id) => names.isolatedVeth(id)))
    const removeLinks = full ? links.filter((l) => !keepLinks.has(l)) : []
    // Applied again on a full pass too (someone may have flushed the ruleset).
    const table = body !== applied || full ? body : undefined
    const script = renderActions(names, { create, ...(table !== undefined && { table }), removeNs, removeLinks })
    let out = ''
    if (script) {
      try {
        // The script on stdin, read whole before it runs: as one argument it hit the kernel's
        // 128 KiB limit per argument (E2BIG) once ~150 namespaces were built in one pass.
        out = await tools.run('sh', ['-c', 'eval "$(cat)"'], script)
      } catch (err) {
        log.warn({ err }, 'network: isolated namespaces: the pass failed')
      }
    }
    const lines = out.split('\n')
    for (const c of create) {
      netns.add(names.isolatedNs(c.instanceId))
      if (lines.includes(`ok ${c.instanceId}`)) {
        whole.set(c.instanceId, c.ip)
        log.info({ instanceId: c.instanceId, ip: c.ip }, 'network: isolated namespace created')
      } else {
        const why = lines.find((l) => l.startsWith(`fail ${c.instanceId}`))?.slice(42).trim()
        log.warn({ instanceId: c.instanceId, err: why ?? 'the pass failed' }, 'network: cannot build an isolated namespace')
      }
    }
    if (table !== undefined) {
      // Success is the status nft printed, not what was applied: removing the table (null) succeeds too.
      const ok = /^table 0 /m.test(out)
      applied = ok ? table : undefined
      if (!ok) log.warn({ err: lines.find((l) => l.startsWith('table '))?.slice(6) ?? 'the pass failed' }, 'network: cannot apply the isolated namespaces’ port forwards')
    }
    const deleted = removeNs.filter((n) => lines.includes(`gone ${n}`))
    for (const n of deleted) {
      const id = names.parseIsolatedNs(n)!
      const addr = whole.get(id)
      if (addr) gone.set(addr, Date.now())
      netns.delete(n)
      whole.delete(id)
      forwardsOf.delete(id)
    }
    while (gone.size > MAX_GONE) gone.delete(gone.keys().next().value!)
    if (deleted.length) log.info({ netns: deleted }, 'network: isolated namespaces no longer needed, deleted')
    // One still in use goes at a later pass: soon, not after resyncMs.
    if (deleted.length < removeNs.length) setTimeout(() => passes.kick(), 1000).unref()
    ready.clear()
    failed.clear()
    for (const i of wanted) {
      if (deferred.has(i.instanceId)) continue
      const addr = whole.get(i.instanceId)
      if (addr && typeof applied === 'string') ready.set(i.instanceId, addr)
      else failed.set(i.instanceId, addr ? 'its port forwards could not be applied (nftables)' : 'its network namespace could not be built (see the agent log)')
    }
    // Something failed: look again at the next pass, not after resyncMs.
    if (failed.size) observedAt = -Infinity
    if (deferred.size) setTimeout(() => passes.kick(), 0).unref()
  }

  const passes = createPassLoop(pass, log, 'isolated namespaces')
  const timer = setInterval(() => passes.kick(), resyncMs)
  timer.unref()

  return {
    apply: (d: TDesired) => passes.set(d),
    /** The instance's namespace, ready with its port forwards (after a pass that saw it, if none has yet). */
    async prepare(instanceId: string): Promise<{ netns: string; resolvConf?: string }> {
      // The pass of the latest desired state (its ports) first; another only if that one did not see it.
      await passes.until(passes.latest())
      // Its turn comes in a later pass (every pass builds some of the missing ones).
      for (let k = 0; deferred.has(instanceId) && k < 64; k++) await passes.until(passes.kick())
      if (!ready.has(instanceId)) await passes.until(passes.kick())
      if (!ready.has(instanceId)) throw new Error(failed.get(instanceId) ?? 'the instance is not in the desired state')
      const resolv = await (resolvConf ??= resolvConfFor(log))
      return { netns: netnsPath(names.isolatedNs(instanceId)), ...(resolv && { resolvConf: resolv }) }
    },
    /** Resolves after a full pass that started after this call. */
    sync: () => passes.until(passes.kick()),
    /** Stops; with `remove`, once every instance has stopped, takes its namespaces and rules away too. */
    async close(remove = false): Promise<void> {
      clearInterval(timer)
      if (remove) {
        passes.set({ type: 'desired', generation: 0, instances: [], networks: [], loadBalancers: [] })
        await passes.until(passes.latest())
        // Nothing of the node's instances is left to reset connections to: the table goes too.
        gone.clear()
        await passes.until(passes.kick())
      }
      await passes.close()
    },
  }
}
export type Isolation = ReturnType<typeof createIsolation>
