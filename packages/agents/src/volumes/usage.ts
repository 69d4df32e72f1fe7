/** Space used by the volumes this node holds, measured with du (disk blocks, as quotas count). */
import { spawn } from 'node:child_process'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { dataDir, type VolumeDirs } from './store'

function du(path: string): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn('du', ['-sk', path], { stdio: ['ignore', 'pipe', 'ignore'] })
    let out = ''
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c))
    child.once('error', () => resolve(null))
    child.once('exit', () => {
      const kib = Number(out.split(/\s/)[0])
      resolve(Number.isFinite(kib) && out ? kib * 1024 : null)
    })
  })
}

/** Local volumes on this node, and the shared volumes mounted by its instances. */
export async function measureVolumes(dirs: VolumeDirs, shared: ReadonlyMap<string, string>): Promise<{ volumeId: string; usedBytes: number }[]> {
  const local = await readdir(dirs.local).catch(() => [] as string[])
  const targets = [...local.map((id) => [id, dataDir(join(dirs.local, id))] as const), ...shared]
  const out: { volumeId: string; usedBytes: number }[] = []
  for (const [volumeId, path] of targets) {
    const used = await du(path)
    if (used !== null && /^[0-9a-f-]{36}$/.test(volumeId)) out.push({ volumeId, usedBytes: used })
  }
  return out
}
