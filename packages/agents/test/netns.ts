/**
 * Simulated nodes for the network tests: each node is a network namespace on an underlay
 * (a bridge in its own namespace, addresses in 198.18.0.0/15). Every name carries a per-run
 * suffix, and cleanup() removes all of it, whatever the test did. No traffic leaves the
 * namespaces the test made.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, readdirSync, readFileSync, rmdirSync, rmSync, type Dirent } from 'node:fs'
import path from 'node:path'

/** Why network tests cannot run here (null: they can). With CI=true a missing piece fails instead. */
export function overlayUnavailable(): string | null {
  let why: string | null = null
  if (process.getuid?.() !== 0) why = 'not root (network namespaces, bridges and VXLAN need root)'
  else {
    for (const [tool, args] of [['ip', ['-V']], ['nft', ['--version']], ['nsenter', ['--version']], ['sysctl', ['--version']]] as const) {
      try {
        execFileSync(tool, [...args], { stdio: 'ignore' })
      } catch {
        why = `${tool} is not installed`
        break
      }
    }
  }
  if (why && process.env.CI === 'true') throw new Error(`network tests cannot run in CI: ${why}`)
  if (why) console.warn(`skipping network tests: ${why}`)
  return why
}

const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString()

export interface SimNode {
  ns: string
  ip: string
  /** The overlay's prefix for this node (unique per run). */
  prefix: string
}

export interface Underlay {
  nodes: SimNode[]
  suffix: string
  cleanup(): void
}

/** `count` nodes on one underlay bridge: 198.18.<k>.<j> per run so parallel runs never share addresses. */
export function makeUnderlay(count: number, opts: { mtu?: number } = {}): Underlay {
  const suffix = randomBytes(3).toString('hex')
  const third = randomBytes(1)[0]!
  const hub = `alvu-${suffix}`
  const nodes: SimNode[] = []
  const made: string[] = []
  const cleanup = () => {
    // The nodes' agents sandbox their instances in cgroups named after the prefix: what still runs there goes first.
    for (const x of nodes) removeCgroups(cgroupsOf(x.prefix))
    // Instance and router namespaces of the nodes' overlays carry the nodes' prefixes.
    const all = sh('ip', ['netns', 'list']).split('\n').map((l) => l.split(' ')[0]!).filter(Boolean)
    for (const n of all) if (nodes.some((x) => n.startsWith(`${x.prefix}-`)) || made.includes(n)) {
      try {
        sh('ip', ['netns', 'del', n])
      } catch {
        /* already gone */
      }
    }
    // And the instances' resolv.conf folders (written by the agents' DNS, removed by them only when they get to it).
    for (const d of existsSync('/etc/netns') ? readdirSync('/etc/netns') : []) if (nodes.some((x) => d.startsWith(`${x.prefix}-`))) rmSync(`/etc/netns/${d}`, { recursive: true, force: true })
  }
  try {
    sh('ip', ['netns', 'add', hub])
    made.push(hub)
    sh('ip', ['-n', hub, 'link', 'add', 'br0', 'type', 'bridge'])
    sh('ip', ['-n', hub, 'link', 'set', 'br0', 'up'])
    for (let k = 1; k <= count; k++) {
      const ns = `alvn${k}-${suffix}`
      sh('ip', ['netns', 'add', ns])
      made.push(ns)
      sh('ip', ['-n', hub, 'link', 'add', `n${k}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns])
      sh('ip', ['-n', hub, 'link', 'set', `n${k}`, 'master', 'br0', 'up', ...(opts.mtu ? ['mtu', String(opts.mtu)] : [])])
      const ip = `198.18.${third}.${k}`
      sh('ip', ['-n', ns, 'addr', 'add', `${ip}/24`, 'dev', 'eth0'])
      sh('ip', ['-n', ns, 'link', 'set', 'eth0', 'up', ...(opts.mtu ? ['mtu', String(opts.mtu)] : [])])
      sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up'])
      const prefix = `${'abcdefghijklmnopqrstuvwxyz'[randomBytes(1)[0]! % 26]}${randomBytes(2).toString('hex').slice(0, 2)}${k}`
      nodes.push({ ns, ip, prefix })
    }
  } catch (err) {
    cleanup()
    throw err
  }
  return { nodes, suffix, cleanup }
}

/** Runs a short Node script inside a namespace (by name or /run/netns path) and returns its stdout. */
export function runIn(netns: string, script: string, timeoutMs = 10_000): Promise<string> {
  const path = netns.startsWith('/') ? netns : `/run/netns/${netns}`
  return new Promise((resolve, reject) => {
    const child = spawn('nsenter', [`--net=${path}`, '--', process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (err += d))
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('exit', (code) => {
      clearTimeout(t)
      if (code === 0) resolve(out.trim())
      else reject(new Error(`script in ${netns} exited ${code}: ${err.trim() || out.trim()}`))
    })
  })
}

/** Connects over TCP from inside a namespace; resolves with the first line the server said, or "error: …". */
export function tcpProbe(fromNetns: string, host: string, port: number, timeoutMs = 2000): Promise<string> {
  return tcpAsk(fromNetns, host, port, 'probe', timeoutMs)
}

/** Like tcpProbe, sending `line` first. */
export function tcpAsk(fromNetns: string, host: string, port: number, line: string, timeoutMs = 2000): Promise<string> {
  return runIn(
    fromNetns,
    `const s=require('net').connect(${port},${JSON.stringify(host)});let b='';s.setTimeout(${timeoutMs},()=>{console.log('error: timeout');process.exit(0)});` +
      `const done=()=>{console.log(b.split('\\n')[0].trim());process.exit(0)};s.on('data',d=>{b+=d;if(b.includes('\\n'))done()});s.on('end',done);s.on('error',e=>{console.log('error: '+e.code);process.exit(0)});s.write(${JSON.stringify(line + '\n')})`,
    timeoutMs + 5000,
  )
}

/** A TCP server in a namespace that answers every connection with `reply` and closes. Resolves once it listens. */
export function serveIn(netns: string, port: number, reply: string, host = '0.0.0.0'): Promise<ChildProcess> {
  const path = netns.startsWith('/') ? netns : `/run/netns/${netns}`
  const child = spawn('nsenter', [`--net=${path}`, '--', process.execPath, '-e', `require('net').createServer(s=>{s.on('error',()=>{});s.end(${JSON.stringify(reply + '\n')})}).listen(${port},${JSON.stringify(host)},()=>console.log('ready'))`], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  return new Promise((resolve, reject) => {
    child.stdout!.once('data', () => resolve(child))
    child.once('exit', (code) => reject(new Error(`server in ${netns} exited ${code}`)))
  })
}

/** Lists what a node's overlay left behind: namespaces with its prefix, its links, its nftables table. */
export function leftovers(node: SimNode): string[] {
  const out: string[] = []
  for (const l of sh('ip', ['netns', 'list']).split('\n')) if (l.startsWith(`${node.prefix}-`)) out.push(`netns ${l.split(' ')[0]}`)
  const links = JSON.parse(sh('ip', ['-n', node.ns, '-j', 'link', 'show'])) as Array<{ ifname: string }>
  for (const l of links) if (l.ifname.startsWith(node.prefix)) out.push(`link ${l.ifname}`)
  for (const d of existsSync('/etc/netns') ? readdirSync('/etc/netns') : []) if (d.startsWith(`${node.prefix}-`)) out.push(`/etc/netns/${d}`)
  const tables = sh('ip', ['netns', 'exec', node.ns, 'nft', 'list', 'tables'])
  if (tables.includes(`alveary_${node.prefix}`)) out.push(`nft table alveary_${node.prefix}`)
  return out
}

/**
 * cgroup folders of an agent's prefix: a sandboxing agent puts its instances in
 * `<its own cgroup>/alveary-<prefix>/<instance id>` (under every controller on cgroup v1).
 */
export function cgroupsOf(prefix: string, dir = '/sys/fs/cgroup', depth = 8): string[] {
  let entries: Dirent[]
  try {
    entries = readdirSync(dir, { withFileTypes: true })
  } catch {
    return []
  }
  return entries.filter((e) => e.isDirectory()).flatMap((e) => (e.name === `alveary-${prefix}` ? [path.join(dir, e.name)] : depth > 1 ? cgroupsOf(prefix, path.join(dir, e.name), depth - 1) : []))
}

/** Kills what runs in these cgroup folders (ours: found by cgroupsOf) and removes them, deepest first; returns those still there. */
export function removeCgroups(dirs: readonly string[]): string[] {
  const procs = (dir: string) => {
    try {
      return readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number)
    } catch {
      return []
    }
  }
  const remove = (dir: string): boolean => {
    let ok = true
    for (const e of existsSync(dir) ? readdirSync(dir, { withFileTypes: true }) : []) if (e.isDirectory()) ok = remove(path.join(dir, e.name)) && ok
    for (const pid of procs(dir)) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {
        /* gone */
      }
    }
    // SIGKILL takes effect at once, but the kernel empties the cgroup a moment later.
    const deadline = Date.now() + 5000
    while (procs(dir).length && Date.now() < deadline) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50)
    try {
      rmdirSync(dir)
    } catch {
      return !existsSync(dir)
    }
    return ok
  }
  return dirs.filter((d) => !remove(d))
}

/**
 * What of a node's network prefix is still on the machine (namespaces, links, nftables tables,
 * /etc/netns folders, the sandbox's cgroup folders), each with how to remove it; only names carrying the prefix.
 */
export function machineLeftovers(prefix: string): Array<{ what: string; remove(): void }> {
  const out: Array<{ what: string; remove(): void }> = []
    // Without root or these tools an agent builds no namespaces, links or tables: nothing to look for.
  const list = (cmd: string, args: string[]) => {
    try {
      return execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'] }).toString()
    } catch {
      return ''
    }
  }
  const add = (what: string, remove: () => unknown) =>
    out.push({
      what,
      remove() {
        try {
          remove()
        } catch {
          /* gone meanwhile, or reported with the rest */
        }
      },
    })
  for (const n of (JSON.parse(list('ip', ['-j', 'netns', 'list']) || '[]') as Array<{ name: string }>).map((x) => x.name))
    if (n.startsWith(`${prefix}-`)) add(`namespace ${n}`, () => sh('ip', ['netns', 'del', n]))
  for (const l of (JSON.parse(list('ip', ['-j', 'link', 'show']) || '[]') as Array<{ ifname: string }>).map((x) => x.ifname))
    if (l.startsWith(prefix)) add(`link ${l}`, () => sh('ip', ['link', 'del', l]))
  const tables = list('nft', ['list', 'tables']).split('\n').map((l) => l.trim())
  for (const t of [`alveary_${prefix}`, `alveary_${prefix}_s`]) if (tables.includes(`table inet ${t}`)) add(`nftables table inet ${t}`, () => sh('nft', ['delete', 'table', 'inet', t]))
  for (const d of existsSync('/etc/netns') ? readdirSync('/etc/netns') : []) if (d.startsWith(`${prefix}-`)) add(`/etc/netns/${d}`, () => rmSync(`/etc/netns/${d}`, { recursive: true, force: true }))
  for (const c of cgroupsOf(prefix)) add(`cgroup ${c}`, () => removeCgroups([c]))
  return out
}
