/**
 * Per-instance state on disk, so a restarted agent can re-adopt the processes and containers
 * it left running: `<dataDir>/instances/<id>/state.json`, written atomically (tmp file + rename).
 * Fields added after the first version have defaults, so older files still load.
 */
import { randomBytes } from 'node:crypto'
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { z } from 'zod'
import { ZLastExit } from '@alveary/core/protocol'
import { instanceDir } from './runtime/process/driver'

export const ZPersistedInstance = z.object({
  instanceId: z.string().uuid(),
  /** Driver that runs (or last ran) the instance. */
  driver: z.enum(['process', 'docker']).default('process'),
  /** Pid of the running process group leader (process driver), or the container's host pid (docker); null when nothing runs. */
  pid: z.number().int().positive().nullable(),
  /** Id of the running container (docker driver). */
  containerId: z.string().min(1).nullable().default(null),
  /** Field 22 of /proc/<pid>/stat: guards against the pid being reused by another process. */
  processStartTime: z.number().int().nullable(),
  specHash: z.string(),
  /** App generation of that spec, reported before the first desired state arrives. */
  generation: z.number().int().min(0),
  startedAt: z.string().nullable(),
  restarts: z.number().int().min(0),
  /** Last observed state, so a restarted agent reports stopped/exited instances faithfully. */
  state: z.enum(['running', 'stopped', 'exited', 'failed']),
  exitCode: z.number().int().nullable(),
  message: z.string().nullable(),
  /** How the previous run ended (an unreadable one costs only itself). */
  lastExit: ZLastExit.nullable().catch(null),
  /** Needed to stop an adopted process that is no longer in the desired state. */
  stopGraceSeconds: z.number().int().min(0),
  /** How far the instance's output was read, so a re-adopting agent does not resend it. */
  logCursor: z
    .object({
      stdout: z.number().int().min(0).optional(),
      stderr: z.number().int().min(0).optional(),
      ts: z.string().optional(),
      atTs: z.number().int().min(0).optional(),
    })
    .nullable()
    .default(null),
  /** What its watchdog watches (self-fencing); null when it needs none. */
  fence: z
    .object({ fences: z.array(z.object({ epochFile: z.string(), epoch: z.number().int().min(0) })) })
    .nullable()
    .default(null),
})
export type PersistedInstance = z.infer<typeof ZPersistedInstance>

export interface StateStore {
  /** Every readable state file; unreadable ones are reported through onError and skipped. */
  loadAll(): Promise<PersistedInstance[]>
  save(rec: PersistedInstance): Promise<void>
  remove(instanceId: string): Promise<void>
  /** Resolves once every queued write has landed (call before the process exits). */
  flush(): Promise<void>
}

export function createStateStore(dataDir: string, onError: (msg: string, err?: unknown) => void = () => {}): StateStore {
  // Writes for one instance are chained so an older write can never land after a newer one.
  const chains = new Map<string, Promise<void>>()
  const enqueue = (id: string, op: () => Promise<void>): Promise<void> => {
    const next = (chains.get(id) ?? Promise.resolve()).then(op).catch((err) => onError(`state of instance ${id}: write failed`, err))
    chains.set(id, next)
    void next.then(() => {
      if (chains.get(id) === next) chains.delete(id)
    })
    return next
  }

  async function loadAll(): Promise<PersistedInstance[]> {
    const root = join(dataDir, 'instances')
    let ids: string[]
    try {
      ids = await readdir(root)
    } catch {
      return []
    }
    const out: PersistedInstance[] = []
    for (const id of ids) {
      let raw: string
      try {
        raw = await readFile(join(root, id, 'state.json'), 'utf8')
      } catch {
        continue // a folder with only logs: the instance was removed
      }
      try {
        const parsed = ZPersistedInstance.safeParse(JSON.parse(raw))
        if (parsed.success && parsed.data.instanceId === id) out.push(parsed.data)
        else onError(`state of instance ${id} is invalid; ignoring it`)
      } catch (err) {
        onError(`state of instance ${id} is not JSON; ignoring it`, err)
      }
    }
    return out
  }

  function save(rec: PersistedInstance): Promise<void> {
    return enqueue(rec.instanceId, async () => {
      const dir = instanceDir(dataDir, rec.instanceId)
      await mkdir(dir, { recursive: true, mode: 0o700 })
      const file = join(dir, 'state.json')
      const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`
      await writeFile(tmp, `${JSON.stringify(rec, null, 2)}\n`, { mode: 0o600 })
      await rename(tmp, file)
    })
  }

  function remove(instanceId: string): Promise<void> {
    // Logs stay for post-mortems; without state.json the folder is never re-adopted.
    return enqueue(instanceId, () => rm(join(instanceDir(dataDir, instanceId), 'state.json'), { force: true }))
  }

  async function flush(): Promise<void> {
    while (chains.size > 0) await Promise.all([...chains.values()])
  }

  return { loadAll, save, remove, flush }
}
