/**
 * CPU and memory used by the instances' process groups, from /proc: CPU as the average
 * rate (millicores) since the previous sample, memory as the sum of VmRSS. 0 where unknown.
 */
import { readFile } from 'node:fs/promises'
import { CLOCK_TICKS_PER_SECOND, hasProcFs, listPids, readProcStat, readRssKb } from './proc'

export interface Usage {
  cpuUsedMillis: number
  memoryUsedMb: number
}

export interface UsageMeter {
  sample(processGroups: readonly number[]): Promise<Usage>
}

export interface GroupUsage {
  cpuMillis: number
  memoryMb: number
}

/** Per process group, for the `metrics` frames. */
export interface GroupUsageMeter {
  sample(processGroups: readonly number[]): Promise<Map<number, GroupUsage>>
}

interface Scan {
  /** CPU ticks per group, reaped children included. */
  ticks: Map<number, number>
  rssKb: Map<number, number>
  /** Start time (ticks after boot) of each group leader still running. */
  leaderStart: Map<number, number>
}

async function scanGroups(processGroups: readonly number[]): Promise<Scan> {
  const groups = new Set(processGroups)
  const scan: Scan = { ticks: new Map(), rssKb: new Map(), leaderStart: new Map() }
  // Scanning all of /proc finds the children of each instance too (same process group).
  // cutime/cstime carry the time of reaped children, so a group's total stays monotonic.
  for (const pid of await listPids()) {
    const stat = await readProcStat(pid)
    if (!stat || !groups.has(stat.pgrp)) continue
    scan.ticks.set(stat.pgrp, (scan.ticks.get(stat.pgrp) ?? 0) + stat.cpuTicks)
    scan.rssKb.set(stat.pgrp, (scan.rssKb.get(stat.pgrp) ?? 0) + (await readRssKb(pid)))
    if (pid === stat.pgrp) scan.leaderStart.set(pid, stat.startTime)
  }
  return scan
}

async function uptimeTicks(): Promise<number | null> {
  try {
    const up = Number((await readFile('/proc/uptime', 'utf8')).split(' ')[0])
    return Number.isFinite(up) ? up * CLOCK_TICKS_PER_SECOND : null
  } catch {
    return null
  }
}

const toMillis = (ticks: number, elapsedMs: number) => (elapsedMs > 0 ? Math.max(0, Math.round(((ticks / CLOCK_TICKS_PER_SECOND) * 1000 * 1000) / elapsedMs)) : 0)

export function createUsageMeter(now: () => number = () => performance.now()): UsageMeter {
  let prev: { at: number; ticks: Map<number, number> } | null = null

  return {
    async sample(processGroups) {
      if (!hasProcFs || processGroups.length === 0) {
        prev = null
        return { cpuUsedMillis: 0, memoryUsedMb: 0 }
      }
      const { ticks, rssKb } = await scanGroups(processGroups)
      const at = now()
      let cpuUsedMillis = 0
      if (prev && at > prev.at) {
        let delta = 0
        for (const [pgrp, t] of ticks) {
          const before = prev.ticks.get(pgrp)
          // A group seen for the first time (or one that lost members) has no meaningful delta yet.
          if (before !== undefined && t > before) delta += t - before
        }
        cpuUsedMillis = toMillis(delta, at - prev.at)
      }
      prev = { at, ticks }
      let kb = 0
      for (const v of rssKb.values()) kb += v
      return { cpuUsedMillis, memoryUsedMb: Math.round(kb / 1024) }
    },
  }
}

export function createGroupUsageMeter(now: () => number = () => performance.now()): GroupUsageMeter {
  let prev: { at: number; ticks: Map<number, number> } | null = null

  return {
    async sample(processGroups) {
      const out = new Map<number, GroupUsage>()
      if (!hasProcFs || processGroups.length === 0) {
        prev = null
        return out
      }
      const { ticks, rssKb, leaderStart } = await scanGroups(processGroups)
      const at = now()
      const uptime = await uptimeTicks()
      for (const pgrp of processGroups) {
        const t = ticks.get(pgrp)
        if (t === undefined) continue // the whole group is gone
        const before = prev?.ticks.get(pgrp)
        let cpuMillis = 0
        if (prev && before !== undefined && at > prev.at) {
          cpuMillis = t > before ? toMillis(t - before, at - prev.at) : 0
        } else {
          // First sight of this group: its average since the leader started.
          const start = leaderStart.get(pgrp)
          if (start !== undefined && uptime !== null && uptime > start) cpuMillis = toMillis(t, ((uptime - start) / CLOCK_TICKS_PER_SECOND) * 1000)
        }
        out.set(pgrp, { cpuMillis, memoryMb: Math.round((rssKb.get(pgrp) ?? 0) / 1024) })
      }
      prev = { at, ticks }
      return out
    },
  }
}
