/** The node credential received in `welcome`, kept in `<dataDir>/credential.json` (mode 0600). */
import { randomBytes } from 'node:crypto'
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { z } from 'zod'

export const ZStoredCredential = z.object({ nodeId: z.string().uuid(), credential: z.string().min(10).max(200) })
export type StoredCredential = z.infer<typeof ZStoredCredential>

export interface CredentialStore {
  readonly path: string
  /** null when absent; throws when present but unreadable, so a broken file is not silently replaced by a new join. */
  load(): Promise<StoredCredential | null>
  save(c: StoredCredential): Promise<void>
}

export function createCredentialStore(dataDir: string): CredentialStore {
  const path = join(dataDir, 'credential.json')
  return {
    path,
    async load() {
      let raw: string
      try {
        raw = await readFile(path, 'utf8')
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
        throw err
      }
      let json: unknown
      try {
        json = JSON.parse(raw)
      } catch {
        throw new Error(`${path} is not valid JSON`)
      }
      const parsed = ZStoredCredential.safeParse(json)
      if (!parsed.success) throw new Error(`${path} does not hold a valid {nodeId, credential}`)
      return parsed.data
    },
    async save(c) {
      await mkdir(dataDir, { recursive: true, mode: 0o700 })
      const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`
      await writeFile(tmp, `${JSON.stringify(c)}\n`, { mode: 0o600 })
      // writeFile's mode is filtered by the umask; the secret must be owner-only regardless.
      await chmod(tmp, 0o600)
      await rename(tmp, path)
    },
  }
}
