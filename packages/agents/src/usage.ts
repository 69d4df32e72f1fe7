/**
 * CPU and memory used by the instances' process groups, from /proc: CPU as the average
 * rate (millicores) since the previous sample, memory as the sum of VmRSS. 0 where unknown.
 */
import { CLOCK_TICKS_PER_SECOND, hasProcFs, listPids, readProcStat, readRssKb } from './proc'

export interface Usage {
  cpuUsedMillis: number
  memoryUsedMb: number
}

export interface UsageMeter {
  sample(processGroups: readonly number[]): Promise<Usage>
}

export function createUsageMeter(now: () => number = () => performance.now()): UsageMeter {
  let prev: { at: number; ticks: Map<number, number> } | null = null

  return {
    async sample(processGroups) {
      if (!hasProcFs || processGroups.length === 0) {
        prev = null
        return { cpuUsedMillis: 0, memoryUsedMb: 0 }
      }
      const groups = new Set(processGroups)
      const ticks = new Map<number, number>()
      let rssKb = 0
      // Scanning all of /proc finds the children of each instance too (same process group).
      // cutime/cstime carry the time of reaped children, so a group's total stays monotonic.
      for (const pid of await listPids()) {
        const stat = await readProcStat(pid)
        if (!stat || !groups.has(stat.pgrp)) continue
        ticks.set(stat.pgrp, (ticks.get(stat.pgrp) ?? 0) + stat.cpuTicks)
        rssKb += await readRssKb(pid)
      }
      const at = now()
      let cpuUsedMillis = 0
      if (prev && at > prev.at) {
        let delta = 0
        for (const [pgrp, t] of ticks) {
          const before = prev.ticks.get(pgrp)
          // A group seen for the first time (or one that lost members) has no meaningful delta yet.
          if (before !== undefined && t > before) delta += t - before
        }
        cpuUsedMillis = Math.round(((delta / CLOCK_TICKS_PER_SECOND) * 1000 * 1000) / (at - prev.at))
      }
      prev = { at, ticks }
      return { cpuUsedMillis, memoryUsedMb: Math.round(rssKb / 1024) }
    },
  }
}
