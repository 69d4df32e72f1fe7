import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { detectCgroups } from '../src/sandbox/cgroups'
import { isAlive, waitFor } from './helpers'
import { cgroupsOf, makeUnderlay, overlayUnavailable } from './netns'

// The simulated nodes' cleanup() leaves nothing of theirs on the machine, whatever the test did:
// agents killed with SIGKILL leave their sandboxed instances running, in cgroups named after
// the node's prefix (alveary-<prefix>, as sandbox/detect.ts names them).
const skip = overlayUnavailable()

describe.skipIf(skip)('simulated nodes', () => {
  it('cleanup() kills what still runs in the cgroups of a node’s prefix and removes them', async () => {
    const u = makeUnderlay(1)
    const prefix = u.nodes[0]!.prefix
    let pid = 0
    try {
      const found = await detectCgroups(`alveary-${prefix}`)
      if (!found.ok) throw new Error(found.reason)
      const cg = await found.cgroups.create(randomUUID(), { memoryMb: 64, cpuMillis: 100, pidsMax: 16 })
      const child = spawn('/bin/sleep', ['600'], { stdio: 'ignore', detached: true })
      child.unref()
      pid = child.pid!
      for (const f of cg.procsFiles) await writeFile(f, String(pid))
      expect(cgroupsOf(prefix)).not.toEqual([])
    } finally {
      u.cleanup()
    }
    expect(cgroupsOf(prefix)).toEqual([])
    await waitFor('the instance gone', () => !isAlive(pid), 5000)
  })
})
