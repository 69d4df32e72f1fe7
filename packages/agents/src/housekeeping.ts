/**
 * The agent's disk use in `<data-dir>/instances`: output files of process instances are capped,
 * and folders of instances that are gone are deleted after a retention.
 *
 * - Rotation is copy-truncate: the instance keeps writing through its append-mode descriptor,
 *   so a file above the cap is copied to `<name>.1` (replacing the previous one) and truncated
 *   in place; the next write lands at the start, and the log follower reads a file that shrank
 *   from its start. Per instance and stream at most twice the cap stays on disk. Lines written
 *   between the copy and the truncation, or not yet shipped at the truncation, are only in `.1`.
 * - An instance the node no longer runs has no `state.json` (its logs stay for post-mortems);
 *   once nothing in its folder changed for the retention, the folder goes.
 */
import { copyFile, readdir, rm, stat, truncate } from 'node:fs/promises'
import { join } from 'node:path'
import type { Logger } from 'pino'

export interface HousekeepingOptions {
  dataDir: string
  /** An output file above this is rotated. */
  maxLogBytes: number
  /** A gone instance's folder is deleted this long after its last change. */
  retentionMs: number
  log: Logger
  now?: () => number
}

const LOG_FILES = ['stdout.log', 'stderr.log']

export function createHousekeeping(opts: HousekeepingOptions) {
  const now = opts.now ?? Date.now
  const root = join(opts.dataDir, 'instances')
  let timer: NodeJS.Timeout | null = null
  let running: Promise<unknown> | null = null

  const statOf = (path: string) => stat(path).catch(() => null)

  async function rotate(dir: string): Promise<number> {
    let rotated = 0
    for (const name of LOG_FILES) {
      const file = join(dir, name)
      const st = await statOf(file)
      if (!st || st.size <= opts.maxLogBytes) continue
      await copyFile(file, `${file}.1`)
      await truncate(file, 0)
      rotated++
    }
    return rotated
  }

  /** Whether the folder of a gone instance has been left alone for the retention. */
  async function expired(dir: string): Promise<boolean> {
    if (await statOf(join(dir, 'state.json'))) return false
    let last = (await statOf(dir))?.mtimeMs ?? 0
    for (const name of await readdir(dir).catch(() => [] as string[])) last = Math.max(last, (await statOf(join(dir, name)))?.mtimeMs ?? 0)
    return now() - last > opts.retentionMs
  }

  async function sweep(): Promise<{ rotated: number; removed: number }> {
    let rotated = 0
    let removed = 0
    const ids = await readdir(root).catch(() => [] as string[])
    for (const id of ids) {
      const dir = join(root, id)
      try {
        if (await expired(dir)) {
          await rm(dir, { recursive: true, force: true })
          removed++
          opts.log.info({ instanceId: id }, 'removed the folder of an instance gone for longer than the retention')
        } else rotated += await rotate(dir)
      } catch (err) {
        opts.log.warn({ instanceId: id, err: (err as Error).message }, 'housekeeping of an instance folder failed')
      }
    }
    if (rotated) opts.log.info({ rotated }, 'rotated instance output files above the cap')
    return { rotated, removed }
  }

  return {
    /** One pass now (also what the timer runs); passes never overlap. */
    sweep(): Promise<{ rotated: number; removed: number }> {
      const p = (running as Promise<{ rotated: number; removed: number }> | null) ?? sweep().finally(() => (running = null))
      running = p
      return p
    },
    start(everyMs: number) {
      timer ??= setInterval(() => void this.sweep(), everyMs)
      timer.unref()
    },
    async stop() {
      if (timer) clearInterval(timer)
      timer = null
      await running
    },
  }
}
