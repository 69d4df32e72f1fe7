import { spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { lockDataDir } from '../src/data-lock'
import { freePort, tempDir, waitFor } from './helpers'

// One agent per data folder: the second refuses to start; a dead holder's lock is taken over.
const BIN = join(import.meta.dirname, '../bin/alveary-agent.mjs')
const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

function startCli(dataDir: string, port: number) {
  const child = spawn(process.execPath, [BIN, '--server', `ws://127.0.0.1:${port}`, '--join-token', 'jt_not-used-here', '--name', 'locked', '--data-dir', dataDir, '--docker-host', 'none', '--network', 'host', '--log-level', 'info'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let stderr = ''
  child.stderr!.on('data', (d) => (stderr += d))
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL')
      await exited
    }
  })
  return { child, exited, stderr: () => stderr }
}
const holderPid = (dir: string) => (JSON.parse(readFileSync(join(dir, 'agent.lock'), 'utf8')) as { pid: number }).pid

// An agent process loads its TypeScript at start: on a busy 2-core machine that alone took over 15 s.
describe('the data folder lock', () => {
  it('refuses a second agent on the same folder, with the holder named; a dead holder is taken over', async () => {
    const dir = await tempDir()
    cleanups.push(dir.cleanup)
    // No server listens there: the agents keep retrying, which is all this test needs.
    const port = await freePort()
    const first = startCli(dir.path, port)
    await waitFor('the first agent holds the lock', () => existsSync(join(dir.path, 'agent.lock')) && holderPid(dir.path) === first.child.pid, 90_000)

    const second = startCli(dir.path, port)
    expect(await second.exited).toBe(2)
    expect(second.stderr()).toContain(`another agent (pid ${first.child.pid}`)
    expect(second.stderr()).toContain(dir.path)
    expect(first.child.exitCode).toBeNull()

    // A crash leaves the lock behind; the next agent sees its holder is gone.
    first.child.kill('SIGKILL')
    await first.exited
    const third = startCli(dir.path, port)
    await waitFor('the third agent took the stale lock', () => existsSync(join(dir.path, 'agent.lock')) && holderPid(dir.path) === third.child.pid, 90_000)
    expect(third.child.exitCode).toBeNull()
  }, 240_000)

  it('takes over a lock written on another host (a copied folder) and gives its own back', async () => {
    const dir = await tempDir()
    cleanups.push(dir.cleanup)
    const path = join(dir.path, 'agent.lock')
    await writeFile(path, JSON.stringify({ pid: process.pid, host: 'another-machine', startTime: null, since: new Date().toISOString() }))
    const lock = await lockDataDir(dir.path)
    expect(holderPid(dir.path)).toBe(process.pid)
    await expect(lockDataDir(dir.path)).rejects.toThrow(/another agent \(pid \d+/)
    await lock.release()
    expect(existsSync(path)).toBe(false)
  })
})
