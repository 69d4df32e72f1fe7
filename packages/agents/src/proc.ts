/**
 * Tiny /proc readers (Linux). Everything returns null/false instead of throwing: processes
 * vanish between listing and reading, and that is a normal outcome, not an error.
 */
import { readFileSync, readdirSync } from 'node:fs'
import { readFile, readdir } from 'node:fs/promises'

/** USER_HZ: the unit of the tick fields in /proc/<pid>/stat. It is 100 on every Linux ABI Node runs on. */
export const CLOCK_TICKS_PER_SECOND = 100

export const hasProcFs = process.platform === 'linux'

export interface ProcStat {
  pid: number
  /** One letter: R, S, D, Z (zombie), X (dead), ... */
  state: string
  ppid: number
  pgrp: number
  /** utime + stime + cutime + cstime, in clock ticks. */
  cpuTicks: number
  /** Field 22: start time after boot in clock ticks; with the pid it identifies one process. */
  startTime: number
}

export function parseProcStat(text: string): ProcStat | null {
  // Field 2 (comm) is in parentheses and may itself contain spaces or ')': split after the last ')'.
  const open = text.indexOf('(')
  const close = text.lastIndexOf(')')
  if (open < 0 || close < open) return null
  const pid = Number(text.slice(0, open).trim())
  const rest = text.slice(close + 2).split(' ')
  // rest[0] is field 3, so field n is rest[n - 3].
  const num = (field: number) => Number(rest[field - 3])
  const stat: ProcStat = {
    pid,
    state: rest[0] ?? '?',
    ppid: num(4),
    pgrp: num(5),
    cpuTicks: num(14) + num(15) + num(16) + num(17),
    startTime: num(22),
  }
  return Number.isFinite(stat.startTime) && Number.isFinite(stat.pgrp) ? stat : null
}

export function readProcStatSync(pid: number): ProcStat | null {
  try {
    return parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return null
  }
}

export async function readProcStat(pid: number): Promise<ProcStat | null> {
  try {
    return parseProcStat(await readFile(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return null
  }
}

/** Start time of a live process, or null (not running, or no /proc). */
export function readStartTime(pid: number): number | null {
  return readProcStatSync(pid)?.startTime ?? null
}

/** VmRSS in kB, or 0 (kernel threads and zombies have none). */
export async function readRssKb(pid: number): Promise<number> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8')
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)
    return m?.[1] ? Number(m[1]) : 0
  } catch {
    return 0
  }
}

export async function listPids(): Promise<number[]> {
  try {
    const entries = await readdir('/proc')
    return entries.filter((e) => /^\d+$/.test(e)).map(Number)
  } catch {
    return []
  }
}

function signalZeroSucceeds(target: number): boolean {
  try {
    process.kill(target, 0)
    return true
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * True when `pid` is alive and is the same process we started: the start time guards
 * against the pid having been reused by an unrelated process since.
 */
export function isSameProcess(pid: number, startTime: number | null): boolean {
  if (!hasProcFs) return signalZeroSucceeds(pid)
  const stat = readProcStatSync(pid)
  if (!stat || stat.state === 'Z' || stat.state === 'X') return false
  return startTime === null || stat.startTime === startTime
}

const isLive = (stat: ProcStat | null, pgid: number) => stat !== null && stat.pgrp === pgid && stat.state !== 'Z' && stat.state !== 'X'

/** True while any member of the process group is still running. */
export function isGroupAlive(pgid: number): boolean {
  if (!signalZeroSucceeds(-pgid)) return false
  if (!hasProcFs) return true
  // kill(-pgid, 0) also succeeds for zombies, and a re-adopted process is reaped by PID 1, which
  // may be slow or (in some containers) never do it: only running members count.
  if (isLive(readProcStatSync(pgid), pgid)) return true
  try {
    return readdirSync('/proc').some((e) => /^\d+$/.test(e) && isLive(readProcStatSync(Number(e)), pgid))
  } catch {
    return true
  }
}

/** Sends a signal to a whole process group; a group that is already gone is not an error. */
export function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal)
    return true
  } catch {
    return false
  }
}
