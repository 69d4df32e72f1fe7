/**
 * Where volumes live on a node and the fencing epoch each one carries:
 *   local:  <dataDir>/volumes/<volumeId>/{data/, epoch}
 *   shared: <sharedDir>/<tenantId>/<volumeId>/{data/, epoch}   (storage every node mounts)
 * The epoch file is the fence: an attachment with a lower epoch than the file's is stale
 * and never starts; a watchdog kills an instance whose shared volume's epoch moved past its own.
 */
import { chown, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { TMount, TVolumeDriver } from '@alveary/core/protocol'

export interface VolumeDirs {
  local: string
  /** The shared storage's mount point; null: this node offers no shared volumes. */
  shared: string | null
}

export interface VolumeRef {
  volumeId: string
  tenantId: string
  driver: TVolumeDriver
}

/** A volume ready to mount: its data folder on the host and where the instance sees it. */
export interface HostMount {
  volumeId: string
  name: string
  hostPath: string
  path: string
  /** Shared volumes: the epoch file the watchdog watches, and this attachment's epoch. */
  fence: { epochFile: string; epoch: number } | null
}

export class FencedError extends Error {
  override name = 'FencedError'
}

export function volumeRoot(dirs: VolumeDirs, v: VolumeRef): string {
  if (v.driver === 'local') return join(dirs.local, v.volumeId)
  if (!dirs.shared) throw new FencedError('this node offers no shared volumes')
  return join(dirs.shared, v.tenantId, v.volumeId)
}
export const dataDir = (root: string) => join(root, 'data')
export const epochFile = (root: string) => join(root, 'epoch')

export async function readEpochFile(file: string): Promise<number> {
  const n = Number((await readFile(file, 'utf8').catch(() => '0')).trim())
  return Number.isInteger(n) && n >= 0 ? n : 0
}
const readEpoch = (root: string) => readEpochFile(epochFile(root))

/** Takes the fence for `epoch`: refused when the volume was attached at a later epoch already. */
export async function claim(root: string, epoch: number): Promise<void> {
  const current = await readEpoch(root)
  if (current > epoch) throw new FencedError(`the volume is attached elsewhere (epoch ${current}, this node holds ${epoch})`)
  if (current === epoch) return
  const tmp = `${epochFile(root)}.${process.pid}.tmp`
  await writeFile(tmp, String(epoch))
  await rename(tmp, epochFile(root))
}

/** Creates the data folders of the mounts and takes their fences; the instance may start after this. */
export async function prepareMounts(dirs: VolumeDirs, instance: { tenantId: string; mounts: readonly TMount[] }, owner: { uid: number; gid: number } | null): Promise<HostMount[]> {
  const out: HostMount[] = []
  for (const m of instance.mounts) {
    const root = volumeRoot(dirs, { volumeId: m.volumeId, tenantId: instance.tenantId, driver: m.driver })
    const data = dataDir(root)
    await mkdir(data, { recursive: true, mode: 0o700 })
    // A sandboxed instance runs as its tenant's uid: its volume is its own to write.
    if (owner) await chown(data, owner.uid, owner.gid)
    await claim(root, m.epoch)
    out.push({ volumeId: m.volumeId, name: m.name, hostPath: data, path: m.path, fence: m.driver === 'shared' ? { epochFile: epochFile(root), epoch: m.epoch } : null })
  }
  return out
}

/** Makes sure a volume's (empty) data folder exists, e.g. before a copy arrives. */
export async function ensureVolume(dirs: VolumeDirs, v: VolumeRef): Promise<string> {
  const data = dataDir(volumeRoot(dirs, v))
  await mkdir(data, { recursive: true, mode: 0o700 })
  return data
}

/** Deletes this node's copy of a volume (its data and its epoch). */
export async function discardVolume(dirs: VolumeDirs, v: VolumeRef): Promise<void> {
  await rm(volumeRoot(dirs, v), { recursive: true, force: true })
}

/** Env name under which an instance finds a volume's mount path: data -> ALVEARY_VOLUME_DATA. */
export const volumeEnvName = (name: string) => `ALVEARY_VOLUME_${name.toUpperCase().replace(/[^A-Z0-9_]/g, '_')}`
