/**
 * The warm pool of isolated namespaces (isolated.ts): free namespaces `<p>-s-<id of their own>`
 * kept built (veth, addresses, routes), their veth's alias POOL_ALIAS. A start claims one by
 * writing its instance id as the alias, so the machine says whose each is, for the next agent
 * too. Refilled beside the passes, one namespace at a time: a start does not wait for it,
 * unless the pool is empty (then for the namespace being built, rather than building its own).
 */
import { randomUUID } from 'node:crypto'
import { access, writeFile } from 'node:fs/promises'
import type { Logger } from 'pino'
import type { Tools } from './exec'
import { inPool, pickAddress, renderActions } from './isolated-plan'
import type { IpLink } from './links'
import type { OverlayNames } from './names'

/** The alias of a pool namespace's veth until an instance claims it (then it is the instance's id). */
export const POOL_ALIAS = 'alveary-pool'

/**
 * Whose a namespace is, from its veth's alias: a pool one's until claimed (null), then its
 * instance's; no alias: the instance its name carries (built for it, not taken from the pool).
 */
export const ownerOf = (nsId: string, alias: string): string | null => (alias === POOL_ALIAS ? null : alias || nsId)

/** What the agent knows of its isolated namespaces on the machine: isolated.ts looks and keeps it, the pool adds to it. */
export interface Seen {
  /** Our namespaces' names. */
  readonly netns: Set<string>
  /** Pool addresses in use on the machine's links, whichever agent made them. */
  readonly used: Set<string>
  /** Namespaces known whole: the id in their name → address. */
  readonly whole: Map<string, string>
  /** Whose each namespace is (ownerOf). */
  readonly owners: Map<string, string | null>
}

export function createPool(o: {
  names: OverlayNames
  tools: Tools
  log: Logger
  seen: Seen
  /** The size the pool should have now (0: none, or closing). */
  target: () => number
  /** Runs fn in turn with the looks at the machine (a look in the middle of a build would misjudge it as broken). */
  inTurn: <T>(fn: () => Promise<T>) => Promise<T>
  /** Runs a script of renderActions; its output ('' if it failed). */
  runScript: (script: string) => Promise<string>
  /** A build failed: the next pass looks at the machine and removes what there is of it. */
  onBroken: () => void
}) {
  const { names, tools, log, seen } = o
  /** Namespaces being built: no pass removes their links. */
  const building = new Set<string>()
  let refilling: Promise<void> | null = null
  /** The refill's build now (begun, or waiting for its turn). */
  let current: Promise<boolean> = Promise.resolve(true)
  /** Whether /sys/class/net is this process's network namespace (known at the first claim). */
  let sysfsOurs: boolean | undefined

  const free = () => [...seen.owners].filter(([ns, owner]) => owner === null && seen.whole.has(ns)).map(([ns]) => ns)

  /**
   * Gives a free namespace to an instance: its veth's alias says so from now on. Written in
   * sysfs (no process on the start path) when sysfs shows this process's network namespace; not
   * so for an agent entered into another one (`nsenter --net`, as the tests' simulated nodes run).
   */
  async function claim(ns: string, instanceId: string): Promise<boolean> {
    const veth = names.isolatedVeth(ns)
    try {
      sysfsOurs ??= await access(`/sys/class/net/${veth}`).then(
        () => true,
        () => false,
      )
      if (sysfsOurs) await writeFile(`/sys/class/net/${veth}/ifalias`, instanceId)
      else await tools.run('ip', ['link', 'set', 'dev', veth, 'alias', instanceId])
      seen.owners.set(ns, instanceId)
      return true
    } catch (err) {
      // Its veth is gone (someone deleted it): a later pass removes the rest.
      log.warn({ err, netns: names.isolatedNs(ns) }, 'network: a pool namespace could not be claimed')
      seen.whole.delete(ns)
      return false
    }
  }

  /** One free namespace; false: it failed. */
  async function buildOne(): Promise<boolean> {
    // The machine's addresses now: another agent may have built since the last look.
    const all = await tools.json<IpLink[]>('ip', ['-j', 'addr', 'show'])
    for (const ip of all.flatMap((l) => (l.addr_info ?? []).flatMap((a) => [a.local, a.address ?? ''])).filter(inPool)) seen.used.add(ip)
    const id = randomUUID()
    const ip = pickAddress(id, seen.used)
    seen.used.add(ip)
    building.add(id)
    const out = await o.runScript(renderActions(names, { create: [{ instanceId: id, ip, replace: false, alias: POOL_ALIAS }], removeIds: [], removeLinks: [] }))
    building.delete(id)
    if (!out.split('\n').includes(`ok ${id}`)) {
      log.warn({ netns: names.isolatedNs(id), err: out.trim().slice(0, 300) }, 'network: cannot build a pool namespace')
      o.onBroken()
      return false
    }
    seen.netns.add(names.isolatedNs(id))
    seen.owners.set(id, null)
    seen.whole.set(id, ip)
    return true
  }

  const short = () => free().length + building.size < o.target()

  return {
    free,
    claim,
    /** Ids of namespaces being built. */
    building: building as ReadonlySet<string>,
    /** Builds free namespaces until the pool is full, in the background; a failure stops it until the next call. */
    refill(): void {
      if (!short()) return
      refilling ??= (async () => {
        try {
          while (short()) if (!(await (current = o.inTurn(buildOne)))) return
        } catch (err) {
          log.warn({ err }, 'network: refilling the isolated namespaces’ pool failed')
        } finally {
          refilling = null
        }
      })()
    },
    /** Resolves once the refill's build now (if any) has ended, built or not. */
    inFlight: (): Promise<void> => current.then(() => undefined, () => undefined),
    /** Resolves once no refill runs. */
    async refilled(): Promise<void> {
      while (refilling) await refilling
    },
  }
}
export type Pool = ReturnType<typeof createPool>
