/**
 * Children of `npm start` (console, agent) and the embedded PostgreSQL run in process groups of
 * their own, so a SIGKILL of their parent (a test runner or CI step stopping it) would leave them
 * running with their ports. dyingWithUs has the kernel tell them instead.
 */
import { spawn } from 'node:child_process'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { isAlive as alive } from '../../../packages/agents/test/helpers'
import { waitFor } from './harness'

describe.skipIf(process.platform !== 'linux')('dyingWithUs', () => {
  it('a detached child gets its signal when its parent is SIGKILLed', async () => {
    const module = path.join(import.meta.dirname, '../src/dying-with-us.ts')
    // The parent: spawns `sleep` in its own process group, as start-all does, and prints its pid.
    const parent = spawn(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', `const { spawn } = await import('node:child_process'); const { dyingWithUs } = await import(${JSON.stringify(module)}); const [f, a] = dyingWithUs('sleep', ['600']); const c = spawn(f, a, { detached: true, stdio: 'ignore' }); console.log(c.pid); setInterval(() => {}, 1000)`],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    )
    let out = ''
    parent.stdout.on('data', (d) => (out += d))
    const child = await waitFor('the child to start', async () => Number(out.trim()) > 0 && Number(out.trim()))
    try {
      expect(alive(child)).toBe(true)
      parent.kill('SIGKILL')
      await waitFor('the child to be gone', async () => !alive(child), 10_000)
    } finally {
      parent.kill('SIGKILL')
      if (alive(child)) process.kill(child, 'SIGKILL')
    }
  })
})
