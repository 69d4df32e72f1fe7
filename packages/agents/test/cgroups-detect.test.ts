/**
 * cgroup detection and limits on hosts this machine is not: a cgroup v2 host (this CI machine
 * is hybrid, its controllers bound to v1, so a real v2 tree cannot be had here) and a hybrid
 * host whose unified tree has no controllers. Plain folders stand in for the cgroup file
 * systems and the agent's /proc answers are given: what is checked is which version is chosen,
 * where instance cgroups go, and what is written to them. The kernel's own rules (no internal
 * processes, rmdir of a cgroup with files) are not simulated; the real-tree tests are cgroups.test.ts.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { detectCgroups, type CgroupHost } from '../src/sandbox/cgroups'

const OWN = '/system.slice/alveary-agent.service'
let dir: string
/** Waits for a condition (the end of a run's first second is a timer in the agent). */
async function until(ok: () => Promise<boolean>): Promise<void> {
  while (!(await ok())) await new Promise((r) => setTimeout(r, 20))
}

afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true })
})

const mountLine = (id: number, mountPoint: string, fstype: 'cgroup' | 'cgroup2', superOpts: string) =>
  `${id} 24 0:${id} / ${mountPoint} rw,nosuid,nodev,noexec,relatime shared:${id} - ${fstype} ${fstype} ${superOpts}`

function host(mountinfo: string[], cgroupOf: Record<string, string>): CgroupHost {
  return {
    mountinfo: () => mountinfo.join('\n') + '\n',
    procCgroup: (pid) => {
      const text = cgroupOf[String(pid)]
      if (text === undefined) throw Object.assign(new Error(`no process ${pid}`), { code: 'ENOENT' })
      return text
    },
  }
}
const read = (file: string) => readFile(file, 'utf8')

describe('cgroup detection on stand-in trees', () => {
  it('a cgroup v2 host: controllers handed down to the group, limits in memory.max, cpu.max, pids.max; adoption by path', async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'alveary-cgv2-'))
    const root = path.join(dir, 'unified')
    await mkdir(path.join(root, OWN), { recursive: true })
    await writeFile(path.join(root, 'cgroup.controllers'), 'cpuset cpu io memory hugetlb pids rdma misc\n')
    const group = 'alveary-t1'
    const found = await detectCgroups(
      group,
      host([mountLine(30, root, 'cgroup2', 'rw,nsdelegate,memory_recursiveprot')], {
        self: `0::${OWN}\n`,
        '4242': `0::${OWN}/${group}/inst-1\n`,
        '4343': `0::/user.slice/other/inst-1\n`,
      }),
    )
    if (!found.ok) throw new Error(found.reason)
    const cg = found.cgroups
    expect(cg.version).toBe(2)
    expect(await read(path.join(root, OWN, 'cgroup.subtree_control'))).toBe('+memory +cpu +pids')

    const a = await cg.create('inst-1', { memoryMb: 64, cpuMillis: 250, pidsMax: 32 })
    const at = path.join(root, OWN, group, 'inst-1')
    expect(a.procsFiles).toEqual([path.join(at, 'cgroup.procs')])
    expect(await read(path.join(root, OWN, group, 'cgroup.subtree_control'))).toBe('+memory +cpu +pids')
    expect(await read(path.join(at, 'memory.max'))).toBe(String(64 * 1024 * 1024))
    expect(await read(path.join(at, 'memory.swap.max'))).toBe('0')
    // The share per 1 s while the run starts, then per 100 ms (same average).
    expect(await read(path.join(at, 'cpu.max'))).toBe('250000 1000000')
    await until(async () => (await read(path.join(at, 'cpu.max'))) === '25000 100000')
    expect(await read(path.join(at, 'pids.max'))).toBe('32')
    await writeFile(path.join(at, 'memory.events'), 'low 0\nhigh 0\nmax 7\noom 2\noom_kill 2\n')
    expect(await a.oomKills()).toBe(2)

    // No cpu limit asked: no cpu.max written (the kernel's default is "max").
    await cg.create('inst-2', { memoryMb: 32, cpuMillis: 0, pidsMax: 8 })
    await expect(read(path.join(root, OWN, group, 'inst-2', 'cpu.max'))).rejects.toThrow()

    // A run a previous agent started is ours only under this agent's group and this instance.
    expect(cg.adopt('inst-1', 4242)?.procsFiles).toEqual([path.join(at, 'cgroup.procs')])
    expect(cg.adopt('inst-1', 4343)).toBeNull()
    expect(cg.adopt('inst-1', 4444)).toBeNull()
  })

  it('a hybrid host whose unified tree has no controllers: v1 hierarchies are used, limits in their files', async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'alveary-cgv1-'))
    const unified = path.join(dir, 'unified')
    await mkdir(unified, { recursive: true })
    await writeFile(path.join(unified, 'cgroup.controllers'), '\n')
    const v1 = { memory: path.join(dir, 'memory'), cpu: path.join(dir, 'cpu,cpuacct'), pids: path.join(dir, 'pids') }
    for (const d of Object.values(v1)) await mkdir(path.join(d, OWN), { recursive: true })
    const group = 'alveary-t2'
    const found = await detectCgroups(
      group,
      host(
        [
          mountLine(25, unified, 'cgroup2', 'rw,nsdelegate'),
          mountLine(26, v1.memory, 'cgroup', 'rw,memory'),
          mountLine(27, v1.cpu, 'cgroup', 'rw,cpu,cpuacct'),
          mountLine(28, v1.pids, 'cgroup', 'rw,pids'),
        ],
        { self: `12:pids:${OWN}\n8:memory:${OWN}\n5:cpu,cpuacct:${OWN}\n0::${OWN}\n` },
      ),
    )
    if (!found.ok) throw new Error(found.reason)
    expect(found.cgroups.version).toBe(1)
    const a = await found.cgroups.create('inst-1', { memoryMb: 128, cpuMillis: 500, pidsMax: 64 })
    const at = (d: string) => path.join(d, OWN, group, 'inst-1')
    expect(a.procsFiles.sort()).toEqual([v1.memory, v1.cpu, v1.pids].map((d) => path.join(at(d), 'cgroup.procs')).sort())
    expect(await read(path.join(at(v1.memory), 'memory.limit_in_bytes'))).toBe(String(128 * 1024 * 1024))
    const cpu = async () => `${await read(path.join(at(v1.cpu), 'cpu.cfs_quota_us'))} ${await read(path.join(at(v1.cpu), 'cpu.cfs_period_us'))}`
    expect(await cpu()).toBe('500000 1000000')
    await until(async () => (await cpu()) === '50000 100000')
    expect(await read(path.join(at(v1.pids), 'pids.max'))).toBe('64')
  })

  it('says why when neither version has the controllers', async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'alveary-cgnone-'))
    await writeFile(path.join(dir, 'cgroup.controllers'), 'cpu io\n')
    const found = await detectCgroups('alveary-t3', host([mountLine(30, dir, 'cgroup2', 'rw')], { self: '0::/\n' }))
    expect(found.ok).toBe(false)
    if (!found.ok) expect(found.reason).toMatch(/no cgroup controllers for memory, cpu, pids/)
  })
})
