/**
 * One agent per data folder. Two agents on one folder (a copied folder, a second start by
 * mistake) would both adopt and restart the same instances and fight over the node's
 * connection. `<dataDir>/agent.lock` names the holder (pid, host, process start time); a
 * second agent refuses to start while the holder runs. A lock whose process is gone (a
 * crash, a reboot, pid reused by something else) or that was written on another host (a
 * copied folder: the server refuses the second live connection of a node) is taken over.
 */
import { readFileSync } from 'node:fs'
import { open, readFile, rm, stat } from 'node:fs/promises'
import os from 'node:os'
import { join } from 'node:path'
import { z } from 'zod'

const ZHolder = z.object({ pid: z.number().int().positive(), host: z.string(), startTime: z.string().nullable(), since: z.string() })
type Holder = z.infer<typeof ZHolder>

/** The kernel's start time of a process (Linux), which tells a reused pid from the original; null elsewhere. */
function startTimeOf(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null
  } catch {
    return null
  }
}

function running(h: Holder): boolean {
  if (h.host !== os.hostname()) return false
  try {
    process.kill(h.pid, 0)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false
  }
  return h.startTime === null || startTimeOf(h.pid) === h.startTime
}

export class DataDirLocked extends Error {
  override name = 'DataDirLocked'
}

export async function lockDataDir(dataDir: string): Promise<{ path: string; release(): Promise<void> }> {
  const path = join(dataDir, 'agent.lock')
  const me: Holder = { pid: process.pid, host: os.hostname(), startTime: startTimeOf(process.pid), since: new Date().toISOString() }
  const mine = JSON.stringify(me)
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fh = await open(path, 'wx', 0o600)
      await fh.writeFile(`${mine}\n`)
      await fh.close()
      return {
        path,
        async release() {
          // Only our own lock: after a takeover it belongs to someone else.
          if ((await readFile(path, 'utf8').catch(() => '')).trim() === mine) await rm(path, { force: true })
        },
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
    const text = await readFile(path, 'utf8').catch(() => null)
    if (text === null) continue // removed meanwhile: try again
    let holder: Holder | null = null
    try {
      holder = ZHolder.parse(JSON.parse(text))
    } catch {
      // Being written by an agent starting right now, or garbage left by a crash.
      const age = Date.now() - (await stat(path).catch(() => ({ mtimeMs: 0 }))).mtimeMs
      if (age < 5_000) throw new DataDirLocked(`another agent is starting with the data folder ${dataDir} right now (${path})`)
    }
    if (holder && running(holder)) {
      throw new DataDirLocked(
        `another agent (pid ${holder.pid}, running since ${holder.since}) is using the data folder ${dataDir}. Stop it first, or give this agent its own --data-dir (lock: ${path})`,
      )
    }
    await rm(path, { force: true })
  }
  throw new DataDirLocked(`could not take the lock ${path}: other agents keep taking it`)
}
