/**
 * The command line that runs one instance in its sandbox (pure: unit-tested without running it).
 *
 *   sh (joins the instance's cgroups, then execs)
 *   └ nsenter --net=<instance netns>   (tenant-network instances only)
 *     └ bwrap: new mount, PID, IPC, UTS and cgroup namespaces; a root of its own with the
 *       system read-only, the app read-only, a private work dir and /tmp the only writable places
 *       └ setpriv: the tenant's uid/gid, no supplementary groups, no capabilities (bounding set
 *         emptied too), no_new_privs
 *         └ the app's command
 *
 * bwrap runs as root without a user namespace, so the sandbox's uid is the real uid on the
 * host: file permissions, signals and /proc of other tenants all see an unprivileged stranger.
 * Every exec keeps the pid, so the pid the agent spawned is the sandbox's pid (re-adoption).
 */
import { dirname, isAbsolute } from 'node:path'
import type { TRunAs } from '@alveary/core/protocol'

/** Where the instance's private work directory appears inside (also its HOME). */
export const SANDBOX_HOME = '/home/app'

/** Host directories of the system, visible read-only (those that exist; symlinks are recreated as symlinks). */
export const SYSTEM_DIRS = ['/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32', '/opt'] as const

/**
 * What of /etc an app may need: name resolution, TLS roots, the dynamic linker's cache, time
 * zones, alternatives (Debian's /usr/bin symlinks point there). Not shadow, ssh keys, sudoers.
 * Mirrored into one folder bound at /etc (etc.ts).
 */
export const ETC_FILES = [
  'alternatives',
  'ca-certificates',
  'ca-certificates.conf',
  'gai.conf',
  'group',
  'host.conf',
  'hostname',
  'hosts',
  'ld.so.cache',
  'ld.so.conf',
  'ld.so.conf.d',
  'localtime',
  'mime.types',
  'nsswitch.conf',
  'os-release',
  'passwd',
  'protocols',
  'resolv.conf',
  'services',
  'ssl/certs',
  'ssl/openssl.cnf',
  'timezone',
  'zoneinfo',
] as const

export interface SandboxSpec {
  command: string
  args: readonly string[]
  runAs: TRunAs
  /** The app's files (the working directory), read-only. */
  appDir: string
  /** The instance's private writable directory on the host, mounted at SANDBOX_HOME. */
  workDir: string
  /** Volumes: host folder → path inside, writable. */
  mounts: ReadonlyArray<{ hostPath: string; path: string }>
  /** Host paths never visible inside, even under appDir (the agent's data, the platform's). */
  hide: readonly string[]
  /** `cgroup.procs` files the process joins before anything else runs. */
  cgroupProcs: readonly string[]
  /** A network namespace to run in; absent: the node's network. */
  netns?: string
  /** The folder shown read-only at /etc: the node's ETC_FILES, mirrored (etc.ts). */
  etcDir: string
  /** Shown at /etc/resolv.conf instead of the node's (a tenant network's names). */
  resolvConf?: string
  hostname: string
  /** What kind each system path is on this host (symlink target, dir, or absent). */
  systemDirs: ReadonlyArray<{ path: string; symlink: string | null }>
}

/** `sh -c` script: join every cgroup named before `--`, then exec the rest. */
const JOIN_CGROUPS = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 126; shift; done; shift; exec "$@"'

const under = (path: string, dir: string) => path === dir || path.startsWith(dir.endsWith('/') ? dir : `${dir}/`)

/** Every proper ancestor of `path` ("/a/b/c" → "/a", "/a/b"). */
function ancestors(path: string): string[] {
  const parts = path.split('/').filter(Boolean)
  return parts.slice(0, -1).map((_, i) => `/${parts.slice(0, i + 1).join('/')}`)
}

/**
 * Why the tenant's uid cannot enter the app dir, or null. bwrap binds it with its own owner and
 * mode, so a folder only its owner may enter (a clone made private, a umask of 077) would show the
 * app "file not found" (Node: MODULE_NOT_FOUND) instead of the reason.
 */
export function appDirRefusal(dir: string, st: { mode: number; uid: number; gid: number }, runAs: TRunAs): string | null {
  const bits = st.uid === runAs.uid ? st.mode >> 6 : st.gid === runAs.gid ? st.mode >> 3 : st.mode
  if (bits & 1) return null
  const mode = (st.mode & 0o777).toString(8).padStart(3, '0')
  return `the app's folder ${dir} (mode ${mode}) cannot be entered by the tenant's uid ${runAs.uid}: let others in (chmod o+x ${dir}) or run the agent from a folder they can enter`
}

export function sandboxArgv(s: SandboxSpec): { file: string; argv: string[] } {
  const b: string[] = []
  for (const d of s.systemDirs) {
    if (d.symlink !== null) b.push('--symlink', d.symlink, d.path)
    else b.push('--ro-bind', d.path, d.path)
  }
  b.push('--proc', '/proc', '--dev', '/dev', '--perms', '1777', '--tmpfs', '/tmp', '--tmpfs', '/home', '--tmpfs', '/run')
  // A command given by absolute path outside the system dirs (a node installed in /srv/node/bin…).
  const commandDir = isAbsolute(s.command) && !s.systemDirs.some((d) => under(s.command, d.path)) && !under(s.command, s.appDir) ? dirname(s.command) : null
  // bwrap makes the folders leading to a mount point owner-only: the tenant's uid could not pass.
  const made = new Set(['/tmp', '/home', '/run', ...s.systemDirs.map((d) => d.path)])
  for (const dest of [...(commandDir ? [commandDir] : []), s.appDir, SANDBOX_HOME, ...s.mounts.map((m) => m.path)]) {
    for (const a of ancestors(dest)) {
      if (made.has(a) || s.systemDirs.some((d) => under(a, d.path))) continue
      made.add(a)
      b.push('--perms', '0755', '--dir', a)
    }
  }
  // One mount for all of /etc; the mirror always has a resolv.conf to mount a tenant network's over.
  b.push('--ro-bind', s.etcDir, '/etc')
  if (s.resolvConf) b.push('--ro-bind-try', s.resolvConf, '/etc/resolv.conf')
  if (commandDir) b.push('--ro-bind', commandDir, commandDir)
  b.push('--ro-bind', s.appDir, s.appDir)
  // Mounted over whatever of them is under the app dir: an empty, read-only nothing.
  for (const h of s.hide) if (under(h, s.appDir)) b.push('--tmpfs', h, '--remount-ro', h)
  b.push('--bind', s.workDir, SANDBOX_HOME)
  for (const m of s.mounts) b.push('--bind', m.hostPath, m.path)
  b.push('--chdir', s.appDir)
  b.push('--unshare-pid', '--unshare-ipc', '--unshare-uts', '--unshare-cgroup-try', '--hostname', s.hostname)
  const setpriv = [
    '/usr/bin/setpriv',
    `--reuid=${s.runAs.uid}`,
    `--regid=${s.runAs.gid}`,
    '--clear-groups',
    '--inh-caps=-all',
    '--ambient-caps=-all',
    '--bounding-set=-all',
    '--no-new-privs',
    '--',
    s.command,
    ...s.args,
  ]
  const bwrap = ['bwrap', ...b, '--', ...setpriv]
  const inNet = s.netns ? ['nsenter', `--net=${s.netns}`, '--', ...bwrap] : bwrap
  return { file: '/bin/sh', argv: ['-c', JOIN_CGROUPS, 'alveary-sandbox', ...s.cgroupProcs, '--', ...inNet] }
}
