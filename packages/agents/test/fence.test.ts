import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { createLease, uptimeCs } from '../src/fence/lease'
import { fencedReason, startWatchdog, stopWatchdog } from '../src/fence/watchdog'
import { claim, FencedError } from '../src/volumes/store'

const linux = existsSync('/proc/uptime')
const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}
async function until(what: string, fn: () => boolean | Promise<boolean>, ms = 5000) {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (await fn()) return
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`timed out waiting for ${what}`)
}

const dirs: string[] = []
const pids: number[] = []
afterEach(async () => {
  for (const p of pids.splice(0)) {
    try {
      process.kill(-p, 'SIGKILL')
    } catch {
      /* gone */
    }
  }
  for (const d of dirs.splice(0)) {
    await stopWatchdog(d)
    await rm(d, { recursive: true, force: true })
  }
})

/** A detached process group standing in for an instance. */
function instance(): number {
  const child = spawn('sleep', ['60'], { detached: true, stdio: 'ignore' })
  child.unref()
  pids.push(child.pid!)
  return child.pid!
}
async function tmp() {
  const d = await mkdtemp(join(tmpdir(), 'alveary-fence-'))
  dirs.push(d)
  return d
}

describe.skipIf(!linux)('self-fencing watchdog', () => {
  it('kills its instance once the lease lapses, and says why', async () => {
    const dir = await tmp()
    const lease = createLease(dir)
    await lease.welcomed(1000)
    const pid = instance()
    await startWatchdog({ lease: lease.path, watchPid: pid, targets: { pgid: pid }, fences: [], dir })
    await new Promise((r) => setTimeout(r, 400))
    expect(alive(pid)).toBe(true)
    await until('the instance killed', () => !alive(pid), 4000)
    expect(await fencedReason(dir)).toMatch(/lease lapsed/)
  })

  it('keeps the instance while the lease is renewed by acknowledged heartbeats', async () => {
    const dir = await tmp()
    const lease = createLease(dir)
    await lease.welcomed(800)
    const pid = instance()
    await startWatchdog({ lease: lease.path, watchPid: pid, targets: { pgid: pid }, fences: [], dir })
    for (let i = 0; i < 8; i++) {
      lease.sent()
      await lease.acknowledged()
      await new Promise((r) => setTimeout(r, 250))
    }
    expect(alive(pid)).toBe(true)
    // Heartbeats sent but never acknowledged (the control plane is gone) renew nothing.
    for (let i = 0; i < 8 && alive(pid); i++) {
      lease.sent()
      await new Promise((r) => setTimeout(r, 250))
    }
    expect(alive(pid)).toBe(false)
  })

  it('kills its instance when its shared volume is attached elsewhere at a higher epoch', async () => {
    const dir = await tmp()
    const lease = createLease(dir)
    await lease.welcomed(60_000)
    const epochFile = join(dir, 'epoch')
    await writeFile(epochFile, '3')
    const pid = instance()
    await startWatchdog({ lease: lease.path, watchPid: pid, targets: { pgid: pid }, fences: [{ epochFile, epoch: 3 }], dir })
    await new Promise((r) => setTimeout(r, 700))
    expect(alive(pid)).toBe(true)
    await writeFile(epochFile, '4')
    await until('the instance killed', () => !alive(pid), 3000)
    expect(await fencedReason(dir)).toMatch(/epoch 4 > 3/)
  })

  it('a watchdog exits once its instance is gone', async () => {
    const dir = await tmp()
    const lease = createLease(dir)
    await lease.welcomed(60_000)
    const pid = instance()
    await startWatchdog({ lease: lease.path, watchPid: pid, targets: { pgid: pid }, fences: [], dir })
    const wd = Number(await readFile(join(dir, 'watchdog.pid'), 'utf8'))
    expect(alive(wd)).toBe(true)
    process.kill(-pid, 'SIGKILL')
    await until('the watchdog gone', () => !alive(wd) || readFile(`/proc/${wd}/stat`, 'utf8').then((s) => s.split(' ')[2] === 'Z', () => true), 3000)
  })

  it('the lease file counts in centiseconds of uptime', async () => {
    const dir = await tmp()
    const lease = createLease(dir)
    await lease.welcomed(5000)
    const until = Number(await readFile(lease.path, 'utf8'))
    expect(until - uptimeCs()).toBeGreaterThan(400)
    expect(until - uptimeCs()).toBeLessThanOrEqual(500)
  })
})

describe('fencing epochs on volumes', () => {
  it('an attachment older than the volume’s epoch never takes it', async () => {
    const root = await tmp()
    await claim(root, 2)
    await claim(root, 2)
    await claim(root, 5)
    await expect(claim(root, 4)).rejects.toBeInstanceOf(FencedError)
    expect(await readFile(join(root, 'epoch'), 'utf8')).toBe('5')
  })
})
