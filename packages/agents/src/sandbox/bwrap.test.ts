import { describe, expect, it } from 'vitest'
import { appDirRefusal, sandboxArgv, SANDBOX_HOME } from './bwrap'
import { readCgroupMounts, readProcCgroups } from './cgroups'

const base = {
  command: 'node',
  args: ['server.js'],
  runAs: { uid: 200_007, gid: 200_007 },
  appDir: '/srv/app',
  workDir: '/var/lib/agent/instances/i1/work',
  mounts: [{ hostPath: '/var/lib/agent/volumes/v1/data', path: '/data/db' }],
  hide: ['/srv/app/.data', '/var/lib/agent'],
  cgroupProcs: ['/sys/fs/cgroup/memory/a/i1/cgroup.procs', '/sys/fs/cgroup/pids/a/i1/cgroup.procs'],
  hostname: 'web-0',
  etcDir: '/var/lib/agent/sandbox-etc/etc',
  systemDirs: [
    { path: '/usr', symlink: null },
    { path: '/bin', symlink: 'usr/bin' },
  ],
}

describe('sandboxArgv', () => {
  it('joins the cgroups first, then bwrap, then drops to the tenant uid with no capabilities', () => {
    const { file, argv } = sandboxArgv(base)
    expect(file).toBe('/bin/sh')
    const sep = argv.indexOf('--')
    expect(argv.slice(3, sep)).toEqual(base.cgroupProcs)
    expect(argv[sep + 1]).toBe('bwrap')
    const inner = argv.slice(argv.indexOf('/usr/bin/setpriv'))
    expect(inner).toEqual(['/usr/bin/setpriv', '--reuid=200007', '--regid=200007', '--clear-groups', '--inh-caps=-all', '--ambient-caps=-all', '--bounding-set=-all', '--no-new-privs', '--', 'node', 'server.js'])
    for (const ns of ['--unshare-pid', '--unshare-ipc', '--unshare-uts']) expect(argv).toContain(ns)
    // The node's network unless a namespace is given: then nsenter runs bwrap inside it.
    expect(argv).not.toContain('--unshare-net')
    const inNs = sandboxArgv({ ...base, netns: '/run/netns/x' }).argv
    expect(inNs.slice(inNs.indexOf('nsenter'), inNs.indexOf('nsenter') + 4)).toEqual(['nsenter', '--net=/run/netns/x', '--', 'bwrap'])
    // A tenant network's names replace the node's resolver.
    expect(sandboxArgv({ ...base, resolvConf: '/etc/netns/x/resolv.conf' }).argv.join(' ')).toContain('--ro-bind-try /etc/netns/x/resolv.conf /etc/resolv.conf')
  })

  it('shows the system and the app read-only, hides what must stay hidden, and gives the work dir and volumes writable', () => {
    const a = sandboxArgv(base).argv.join(' ')
    expect(a).toContain('--ro-bind /usr /usr')
    expect(a).toContain('--symlink usr/bin /bin')
    expect(a).toContain('--ro-bind /srv/app /srv/app')
    expect(a).toContain('--tmpfs /srv/app/.data --remount-ro /srv/app/.data')
    // Only what is under the app dir needs covering: the rest is never mounted.
    expect(a).not.toContain('--tmpfs /var/lib/agent')
    expect(a).toContain(`--bind /var/lib/agent/instances/i1/work ${SANDBOX_HOME}`)
    expect(a).toContain('--bind /var/lib/agent/volumes/v1/data /data/db')
    // /etc is one mirror of what an app may need (etc.ts): one mount, no file of it bound on its own.
    expect(a).toContain('--ro-bind /var/lib/agent/sandbox-etc/etc /etc')
    expect(a).not.toMatch(/ \/etc\/(?!resolv)/)
    // Folders on the way to mount points are traversable by the tenant's uid.
    expect(a).toContain('--perms 0755 --dir /srv')
    expect(a).toContain('--perms 0755 --dir /data')
    expect(a).toContain('--perms 1777 --tmpfs /tmp')
    expect(a.indexOf('--ro-bind /srv/app')).toBeLessThan(a.indexOf('--tmpfs /srv/app/.data'))
  })
})

describe('cgroup discovery', () => {
  it('reads v1 and v2 mounts and a process’s cgroups', () => {
    const mounts = readCgroupMounts(
      [
        '35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory',
        '32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct',
        '41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw',
      ].join('\n'),
    )
    expect(mounts).toEqual([
      { version: 1, dir: '/sys/fs/cgroup/memory', controllers: ['rw', 'memory'] },
      { version: 1, dir: '/sys/fs/cgroup/cpu,cpuacct', controllers: ['rw', 'cpu', 'cpuacct'] },
      { version: 2, dir: '/sys/fs/cgroup/unified', controllers: [] },
    ])
    const own = readProcCgroups('4:memory:/process_api/x\n2:cpu,cpuacct:/\n0::/user.slice\n')
    expect(own.get('memory')).toBe('/process_api/x')
    expect(own.get('cpuacct')).toBe('/')
    expect(own.get('')).toBe('/user.slice')
  })
})

describe('appDirRefusal', () => {
  const runAs = { uid: 200_007, gid: 200_007 }
  it('refuses a folder only its owner (root) may enter, naming it, its mode and the fix', () => {
    expect(appDirRefusal('/root/clone', { mode: 0o40700, uid: 0, gid: 0 }, runAs)).toBe(
      "the app's folder /root/clone (mode 700) cannot be entered by the tenant's uid 200007: let others in (chmod o+x /root/clone) or run the agent from a folder they can enter",
    )
    expect(appDirRefusal('/srv/app', { mode: 0o40750, uid: 0, gid: 0 }, runAs)).not.toBeNull()
  })
  it('accepts what others may enter, and what the tenant owns or shares a group with', () => {
    expect(appDirRefusal('/srv/app', { mode: 0o40755, uid: 0, gid: 0 }, runAs)).toBeNull()
    expect(appDirRefusal('/srv/app', { mode: 0o40711, uid: 0, gid: 0 }, runAs)).toBeNull()
    expect(appDirRefusal('/srv/app', { mode: 0o40700, uid: 200_007, gid: 0 }, runAs)).toBeNull()
    expect(appDirRefusal('/srv/app', { mode: 0o40750, uid: 0, gid: 200_007 }, runAs)).toBeNull()
  })
})
