/**
 * Instance cgroups on this host's real hierarchy (v1 or v2, detected): limits, kill-all, and
 * nothing left behind once the last instance of an agent is gone. Needs root.
 */
import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { existsSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { describe, expect, it } from 'vitest'
import { detectCgroups } from '../src/sandbox/cgroups'

const root = process.getuid?.() === 0
if (!root) console.log('skipping the cgroup tests: not root')

const sleeper = () => spawn('/bin/sleep', ['600'], { stdio: 'ignore', detached: true })

describe.skipIf(!root)('instance cgroups', () => {
  it('removes the agent’s group folder with its last instance cgroup, and makes it again for the next', async () => {
    const group = `alveary-test-${randomUUID().slice(0, 8)}`
    const found = await detectCgroups(group)
    if (!found.ok) throw new Error(found.reason)
    const cg = found.cgroups
    const limits = { memoryMb: 64, cpuMillis: 100, pidsMax: 16 }
    const a = await cg.create('a', limits)
    const b = await cg.create('b', limits)
    const groupDirs = [...new Set(a.procsFiles.map((f) => dirname(dirname(f))))]
    try {
      for (const d of groupDirs) expect(d.endsWith(group)).toBe(true)
      const p = sleeper()
      for (const f of a.procsFiles) await writeFile(f, String(p.pid))
      expect(await a.pids()).toEqual([p.pid])

      await a.killAll()
      await a.remove()
      // b is still there: so is the group.
      for (const f of a.procsFiles) expect(existsSync(dirname(f))).toBe(false)
      for (const d of groupDirs) expect(existsSync(d)).toBe(true)
      await b.remove()
      for (const d of groupDirs) expect(existsSync(d)).toBe(false)

      // The next instance gets its group back, limits and all.
      const c = await cg.create('c', limits)
      for (const f of c.procsFiles) expect(existsSync(f)).toBe(true)
      await c.remove()
      for (const d of groupDirs) expect(existsSync(d)).toBe(false)
    } finally {
      for (const id of ['a', 'b', 'c']) {
        const h = cg.existing(id)
        await h.killAll()
        await h.remove()
      }
    }
  })

  it('a stop racing a start never loses the group folder under the start', async () => {
    const group = `alveary-test-${randomUUID().slice(0, 8)}`
    const found = await detectCgroups(group)
    if (!found.ok) throw new Error(found.reason)
    const cg = found.cgroups
    const limits = { memoryMb: 64, cpuMillis: 0, pidsMax: 16 }
    try {
      for (let round = 0; round < 20; round++) {
        const first = await cg.create(`r${round}`, limits)
        const [, second] = await Promise.all([first.remove(), cg.create(`s${round}`, limits)])
        for (const f of second.procsFiles) expect(existsSync(f)).toBe(true)
        await second.remove()
      }
    } finally {
      for (let round = 0; round < 20; round++) for (const id of [`r${round}`, `s${round}`]) await cg.existing(id).remove()
    }
  })
})
