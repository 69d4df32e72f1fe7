/**
 * Per-instance cgroups: memory, cpu and pids limits, OOM counts and "kill everything in it".
 * cgroup v2 (one unified tree) and v1 (one tree per controller, as on hybrid hosts) are both
 * handled; which one is detected at start from /proc/self/mountinfo, never assumed.
 *
 * Instance cgroups live under the agent's own cgroup (`<own>/alveary-<prefix>/<instanceId>`):
 * whatever limits the node's init system puts on the agent also bound its instances.
 */
import { existsSync, readFileSync } from 'node:fs'
import { mkdir, readFile, rmdir, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'

export interface CgroupLimits {
  memoryMb: number
  /** 0: no cpu limit. */
  cpuMillis: number
  pidsMax: number
}

/** One instance's cgroup: the files its first process joins and what the agent does with it. */
export interface InstanceCgroup {
  /** `cgroup.procs` files the starting process writes its pid to (one per v1 controller, one on v2). */
  readonly procsFiles: string[]
  /** OOM kills in this cgroup since it was created. */
  oomKills(): Promise<number>
  /** Pids of every process in it. */
  pids(): Promise<number[]>
  /** SIGKILLs everything in it until it is empty (a fork bomb cannot outrun it: pids.max bounds it). */
  killAll(): Promise<void>
  /** Removes the (empty) cgroup, and the agent's group folder with it when it was the last one. */
  remove(): Promise<void>
}

export interface Cgroups {
  readonly version: 1 | 2
  /** Controllers that enforce limits here. */
  readonly controllers: ReadonlyArray<'memory' | 'cpu' | 'pids'>
  /** A fresh cgroup for a run (an old one of the same instance is emptied and replaced: counters start at 0). */
  create(instanceId: string, limits: CgroupLimits): Promise<InstanceCgroup>
  /** The cgroup of a run a previous agent started, found from /proc/<pid>/cgroup; null if it is not one of ours. */
  adopt(instanceId: string, pid: number): InstanceCgroup | null
  /** The cgroup of an instance wherever it is (for cleaning up after a stop). */
  existing(instanceId: string): InstanceCgroup
}

const WANTED = ['memory', 'cpu', 'pids'] as const
type Controller = (typeof WANTED)[number]

interface Mount {
  version: 1 | 2
  dir: string
  controllers: string[]
}

/** cgroup mounts of this process's mount namespace. */
export function readCgroupMounts(mountinfo: string): Mount[] {
  const out: Mount[] = []
  for (const line of mountinfo.split('\n')) {
    const [pre, post] = line.split(' - ')
    if (!pre || !post) continue
    const dir = pre.split(' ')[4]
    const [fstype, , superOpts = ''] = post.split(' ')
    if (!dir) continue
    if (fstype === 'cgroup2') out.push({ version: 2, dir, controllers: [] })
    if (fstype === 'cgroup') out.push({ version: 1, dir, controllers: superOpts.split(',') })
  }
  return out
}

/** `/proc/<pid>/cgroup`: controller (v1) or '' (v2) → path. */
export function readProcCgroups(text: string): Map<string, string> {
  const out = new Map<string, string>()
  for (const line of text.split('\n')) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line)
    if (!m) continue
    for (const c of m[1]!.split(',')) out.set(c, m[2]!)
  }
  return out
}

const write = (file: string, value: string) => writeFile(file, value)

/**
 * A run starts with its cpu share counted over one second (quota = cpuMillis ms per 1 s)
 * instead of per 100 ms: the same average, but a start's burst (an interpreter loading its
 * code, ~60 ms of cpu for Node) runs at full speed instead of at 10 % for 100 millicores
 * (~0.6 s before it listens: most of a move's downtime beyond the platform's). After that
 * second the period is the usual 100 ms again; an agent that dies meanwhile leaves the
 * 1 s period, with the same average.
 */
export const START_CPU_PERIOD_US = 1_000_000
const CPU_PERIOD_US = 100_000
const cpuQuotaUs = (cpuMillis: number, periodUs: number) => Math.max(1000, (cpuMillis * periodUs) / 1000)

/**
 * Back to the 100 ms period once a run's first second is over (its cgroup may be gone by
 * then). One timer per instance: a new run's cgroup (same path) is not touched by the last one's.
 */
function afterStart() {
  const timers = new Map<string, NodeJS.Timeout>()
  return (instanceId: string, apply: (() => Promise<void>) | null) => {
    clearTimeout(timers.get(instanceId))
    timers.delete(instanceId)
    if (!apply) return
    const t = setTimeout(() => {
      timers.delete(instanceId)
      void apply().catch(() => {})
    }, START_CPU_PERIOD_US / 1000)
    t.unref()
    timers.set(instanceId, t)
  }
}
const readNum = async (file: string, key: string): Promise<number> => {
  try {
    const m = new RegExp(`^${key} (\\d+)$`, 'm').exec(await readFile(file, 'utf8'))
    return m ? Number(m[1]) : 0
  } catch {
    return 0
  }
}
const readPids = async (file: string): Promise<number[]> => {
  try {
    return (await readFile(file, 'utf8')).split('\n').filter(Boolean).map(Number)
  } catch {
    return []
  }
}
async function killLoop(pidsOf: () => Promise<number[]>): Promise<void> {
  for (let round = 0; round < 200; round++) {
    const pids = await pidsOf()
    if (!pids.length) return
    for (const p of pids) {
      try {
        process.kill(p, 'SIGKILL')
      } catch {
        // gone already
      }
    }
    await new Promise((r) => setTimeout(r, 10))
  }
}
/**
 * Runs group-folder changes one at a time: a create must not find the group folder gone
 * under it because the last instance's removal dropped it a moment before.
 */
function serialized(): <T>(fn: () => Promise<T>) => Promise<T> {
  let tail: Promise<unknown> = Promise.resolve()
  return (fn) => {
    const run = tail.then(fn, fn)
    tail = run.catch(() => {})
    return run
  }
}

/** Removes a group folder with no instance cgroup left in it (an agent's instances come and go; empty folders should not pile up). */
async function rmdirIfEmpty(dir: string): Promise<void> {
  try {
    await rmdir(dir)
  } catch {
    // Another instance's cgroup is still in it (EBUSY), or it is gone already.
  }
}

async function rmdirRetry(dir: string): Promise<void> {
  // The kernel refuses while exiting processes are still charged to it: a few short retries.
  for (let i = 0; i < 50; i++) {
    try {
      await rmdir(dir)
      return
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'ENOENT') return
      if (code !== 'EBUSY') throw err
      await new Promise((r) => setTimeout(r, 20))
    }
  }
}

/** What detection reads of the host; tests pass a stand-in (a cgroup v2 tree on this v1 machine). */
export interface CgroupHost {
  mountinfo(): string
  /** `/proc/<pid>/cgroup` ('self' for the agent). */
  procCgroup(pid: number | 'self'): string
}
const realHost: CgroupHost = {
  mountinfo: () => readFileSync('/proc/self/mountinfo', 'utf8'),
  procCgroup: (pid) => readFileSync(`/proc/${pid}/cgroup`, 'utf8'),
}

/**
 * The cgroup setup of this host: v2 when /sys/fs/cgroup is a unified tree with the memory, cpu
 * and pids controllers; else v1 when those are mounted as v1 hierarchies; else null (why).
 */
export async function detectCgroups(group: string, host: CgroupHost = realHost): Promise<{ ok: true; cgroups: Cgroups } | { ok: false; reason: string }> {
  let mounts: Mount[]
  let own: Map<string, string>
  try {
    mounts = readCgroupMounts(host.mountinfo())
    own = readProcCgroups(host.procCgroup('self'))
  } catch (err) {
    return { ok: false, reason: `cannot read the cgroup setup: ${(err as Error).message}` }
  }
  const v2 = mounts.find((m) => m.version === 2)
  if (v2) {
    const available = existsSync(join(v2.dir, 'cgroup.controllers')) ? readFileSync(join(v2.dir, 'cgroup.controllers'), 'utf8').trim().split(/\s+/) : []
    if (WANTED.every((c) => available.includes(c))) return v2Cgroups(v2.dir, own.get('') ?? '/', group, host)
  }
  const v1 = new Map<Controller, string>()
  for (const c of WANTED) {
    const m = mounts.find((x) => x.version === 1 && x.controllers.includes(c))
    if (m) v1.set(c, m.dir)
  }
  if (v1.size === WANTED.length) return v1Cgroups(v1, own, group, host)
  const missing = WANTED.filter((c) => !v1.has(c))
  return { ok: false, reason: `no cgroup controllers for ${missing.join(', ')} (neither cgroup v2 with them enabled nor v1 hierarchies)` }
}

async function v1Cgroups(mountDirs: Map<Controller, string>, own: Map<string, string>, group: string, host: CgroupHost): Promise<{ ok: true; cgroups: Cgroups } | { ok: false; reason: string }> {
  const bases = new Map(WANTED.map((c) => [c, join(mountDirs.get(c)!, own.get(c) ?? '/')]))
  const dirs = (instanceId: string) => WANTED.map((c) => [c, join(bases.get(c)!, group, instanceId)] as const)
  const groups = serialized()
  const endOfStart = afterStart()
  try {
    for (const c of WANTED) await mkdir(join(bases.get(c)!, group), { recursive: true })
    for (const c of WANTED) await rmdirIfEmpty(join(bases.get(c)!, group))
  } catch (err) {
    return { ok: false, reason: `cannot create cgroups (v1): ${(err as Error).message}` }
  }
  const handle = (instanceId: string, d: ReadonlyArray<readonly [Controller, string]> = dirs(instanceId)): InstanceCgroup => {
    const of = new Map(d)
    const pids = () => readPids(join(of.get('pids')!, 'cgroup.procs'))
    return {
      procsFiles: d.map(([, dir]) => join(dir, 'cgroup.procs')),
      oomKills: () => readNum(join(of.get('memory')!, 'memory.oom_control'), 'oom_kill'),
      pids,
      killAll: () => killLoop(pids),
      async remove() {
        await Promise.all(d.map(([, dir]) => rmdirRetry(dir)))
        await groups(() => Promise.all(d.map(([, dir]) => rmdirIfEmpty(dirname(dir)))))
      },
    }
  }
  return {
    ok: true,
    cgroups: {
      version: 1,
      controllers: WANTED,
      async create(instanceId, limits) {
        endOfStart(instanceId, null)
        const d = dirs(instanceId)
        // A restart's old cgroup (a new instance has none: nothing to wait for).
        if (d.some(([, dir]) => existsSync(dir))) {
          const old = handle(instanceId)
          await old.killAll()
          await old.remove()
        }
        await groups(() => Promise.all(d.map(([, dir]) => mkdir(dir, { recursive: true }))))
        const of = new Map(d)
        // Each controller's files in order, the controllers side by side (a start waits for them).
        const memory = async () => {
          const mem = String(limits.memoryMb * 1024 * 1024)
          await write(join(of.get('memory')!, 'memory.limit_in_bytes'), mem)
          // Swap must not be a way around the limit.
          const memsw = join(of.get('memory')!, 'memory.memsw.limit_in_bytes')
          if (existsSync(memsw)) await write(memsw, mem)
          await write(join(of.get('memory')!, 'memory.swappiness'), '0').catch(() => {})
        }
        const cpu = async () => {
          if (limits.cpuMillis <= 0) return
          const dir = of.get('cpu')!
          // Quota and period change in an order that never allows more than the share in between.
          const set = async (periodUs: number) => {
            const now = await readFile(join(dir, 'cpu.cfs_period_us'), 'utf8').catch(() => String(CPU_PERIOD_US))
            const grows = periodUs > Number(now)
            const steps = [() => write(join(dir, 'cpu.cfs_period_us'), String(periodUs)), () => write(join(dir, 'cpu.cfs_quota_us'), String(cpuQuotaUs(limits.cpuMillis, periodUs)))]
            for (const step of grows ? steps : steps.reverse()) await step()
          }
          await set(START_CPU_PERIOD_US)
          endOfStart(instanceId, () => set(CPU_PERIOD_US))
        }
        await Promise.all([memory(), cpu(), write(join(of.get('pids')!, 'pids.max'), String(limits.pidsMax))])
        return handle(instanceId, d)
      },
      adopt(instanceId, pid) {
        let paths: Map<string, string>
        try {
          paths = readProcCgroups(host.procCgroup(pid))
        } catch {
          return null
        }
        if (!WANTED.every((c) => paths.get(c)?.endsWith(`/${group}/${instanceId}`))) return null
        // Where a previous agent (perhaps in another cgroup) created it.
        return handle(instanceId, WANTED.map((c) => [c, join(mountDirs.get(c)!, paths.get(c)!)] as const))
      },
      existing: (instanceId) => handle(instanceId),
    },
  }
}

async function v2Cgroups(root: string, own: string, group: string, host: CgroupHost): Promise<{ ok: true; cgroups: Cgroups } | { ok: false; reason: string }> {
  const ownDir = join(root, own)
  const groupDir = join(ownDir, group)
  const enable = (dir: string) => write(join(dir, 'cgroup.subtree_control'), WANTED.map((c) => `+${c}`).join(' '))
  const groups = serialized()
  const endOfStart = afterStart()
  /** The group folder with the controllers handed down to its instance cgroups. */
  const ensureGroup = async () => {
    await mkdir(groupDir, { recursive: true })
    await enable(groupDir)
  }
  try {
    await mkdir(groupDir, { recursive: true })
    try {
      await enable(ownDir)
    } catch {
      // "No internal processes": a cgroup with processes cannot hand controllers to children.
      // The agent moves itself into a leaf of its own cgroup first (what systemd calls delegation).
      const leaf = join(ownDir, 'agent')
      await mkdir(leaf, { recursive: true })
      await write(join(leaf, 'cgroup.procs'), String(process.pid))
      await enable(ownDir)
    }
    await enable(groupDir)
    await rmdirIfEmpty(groupDir)
  } catch (err) {
    return { ok: false, reason: `cannot delegate cgroup v2 controllers under ${ownDir}: ${(err as Error).message}` }
  }
  const handle = (dir: string): InstanceCgroup => {
    const pids = () => readPids(join(dir, 'cgroup.procs'))
    return {
      procsFiles: [join(dir, 'cgroup.procs')],
      oomKills: () => readNum(join(dir, 'memory.events'), 'oom_kill'),
      pids,
      async killAll() {
        // cgroup.kill (Linux 5.14) kills atomically; older kernels: one by one.
        if (existsSync(join(dir, 'cgroup.kill'))) await write(join(dir, 'cgroup.kill'), '1').catch(() => {})
        await killLoop(pids)
      },
      async remove() {
        await rmdirRetry(dir)
        await groups(() => rmdirIfEmpty(dirname(dir)))
      },
    }
  }
  return {
    ok: true,
    cgroups: {
      version: 2,
      controllers: WANTED,
      async create(instanceId, limits) {
        endOfStart(instanceId, null)
        const dir = join(groupDir, instanceId)
        // A restart's old cgroup (a new instance has none: nothing to wait for).
        if (existsSync(dir)) {
          const old = handle(dir)
          await old.killAll()
          await old.remove()
        }
        await groups(async () => {
          await ensureGroup()
          await mkdir(dir)
        })
        const set = (periodUs: number) => write(join(dir, 'cpu.max'), `${cpuQuotaUs(limits.cpuMillis, periodUs)} ${periodUs}`)
        // Side by side: a start waits for them.
        await Promise.all([
          write(join(dir, 'memory.max'), String(limits.memoryMb * 1024 * 1024)),
          write(join(dir, 'memory.swap.max'), '0').catch(() => {}),
          limits.cpuMillis > 0 && set(START_CPU_PERIOD_US),
          write(join(dir, 'pids.max'), String(limits.pidsMax)),
        ])
        if (limits.cpuMillis > 0) endOfStart(instanceId, () => set(CPU_PERIOD_US))
        return handle(dir)
      },
      adopt(instanceId, pid) {
        let path: string | undefined
        try {
          path = readProcCgroups(host.procCgroup(pid)).get('')
        } catch {
          return null
        }
        if (!path?.endsWith(`/${group}/${instanceId}`)) return null
        return handle(join(root, path))
      },
      existing: (instanceId) => handle(join(groupDir, instanceId)),
    },
  }
}
