/**
 * Starts and stops the per-instance watchdogs (watchdog.sh): small shell loops, detached
 * from the agent, that kill an instance when the node's lease lapses or its shared volume
 * was attached elsewhere. Their pid is kept next to the instance's files, so a restarted
 * agent replaces the watchdog of an instance it re-adopts.
 */
import { spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const SCRIPT = fileURLToPath(new URL('./watchdog.sh', import.meta.url))

/** What to kill: a process group, single processes, every process of cgroups. */
export interface FenceTargets {
  pgid?: number
  pids?: number[]
  cgroupProcs?: string[]
}

export interface WatchdogSpec {
  /** The lease file (fence/lease.ts). */
  lease: string
  /** The watchdog exits once this process is gone. */
  watchPid: number
  targets: FenceTargets
  /** Epoch files of shared volumes and the epoch this instance holds. */
  fences: { epochFile: string; epoch: number }[]
  /** Folder of the instance: pid file and the reason it killed, if it did. */
  dir: string
}

const isWatchdog = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('watchdog.sh')
  } catch {
    return false
  }
}

export async function stopWatchdog(dir: string): Promise<void> {
  const file = join(dir, 'watchdog.pid')
  const pid = Number(await readFile(file, 'utf8').catch(() => ''))
  if (pid > 0 && isWatchdog(pid)) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      /* gone */
    }
  }
  await rm(file, { force: true })
}

/** Replaces the instance's watchdog by one for this run. */
export async function startWatchdog(w: WatchdogSpec): Promise<void> {
  await stopWatchdog(w.dir)
  await rm(join(w.dir, 'fenced'), { force: true })
  const args = [SCRIPT, w.lease, String(w.watchPid), join(w.dir, 'fenced')]
  if (w.targets.pgid) args.push('pgid', String(w.targets.pgid))
  for (const p of w.targets.pids ?? []) args.push('pid', String(p))
  for (const c of w.targets.cgroupProcs ?? []) args.push('cgroup', c)
  for (const f of w.fences) args.push('fence', f.epochFile, String(f.epoch))
  const child = spawn('/bin/sh', args, { detached: true, stdio: 'ignore' })
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve)
    child.once('error', reject)
  })
  child.unref()
  await writeFile(join(w.dir, 'watchdog.pid'), String(child.pid), { mode: 0o600 })
}

/** Why the watchdog killed the instance of this folder, if it did. */
export async function fencedReason(dir: string): Promise<string | null> {
  return (await readFile(join(dir, 'fenced'), 'utf8').catch(() => '')).trim() || null
}

/** Watchdogs need /proc/uptime (Linux) and a POSIX shell. */
export function probeSelfFence(): { ok: true } | { ok: false; reason: string } {
  if (!existsSync('/proc/uptime')) return { ok: false, reason: 'no /proc/uptime (self-fencing needs Linux)' }
  if (!existsSync('/bin/sh')) return { ok: false, reason: 'no /bin/sh for the watchdogs' }
  return { ok: true }
}
