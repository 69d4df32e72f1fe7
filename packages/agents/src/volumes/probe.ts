/** What this node can do with volumes, probed at start and advertised in hello. */
import { spawn } from 'node:child_process'
import { access, mkdir, rm, writeFile } from 'node:fs/promises'
import { constants } from 'node:fs'
import { join } from 'node:path'
import type { TVolumeCapability } from '@alveary/core/protocol'
import { probeSelfFence } from '../fence/watchdog'
import { probeRsync } from './copy'

/** Null when the shared storage works; it must exist (a missing mount point is not created: it would be local disk). */
async function probeShared(dir: string | null): Promise<string | null> {
  if (!dir) return 'no shared storage configured (--shared-volumes)'
  try {
    await access(dir, constants.W_OK)
    const probe = join(dir, `.alveary-probe-${process.pid}`)
    await mkdir(probe, { recursive: true })
    await writeFile(join(probe, 'x'), 'x')
    await rm(probe, { recursive: true, force: true })
    return null
  } catch (err) {
    return `${dir} is not writable: ${(err as Error).message}`
  }
}

/** Live moves need Podman with CRIU 4.2 or later (older CRIU fails on recent kernels). */
async function probeCheckpoint(dockerEngine: 'docker' | 'podman' | null): Promise<{ ok: boolean; reason?: string }> {
  if (dockerEngine !== 'podman') return { ok: false, reason: dockerEngine ? 'checkpoint/restore needs Podman' : 'no container engine' }
  const version = await new Promise<string | null>((resolve) => {
    const child = spawn('criu', ['--version'], { stdio: ['ignore', 'pipe', 'ignore'] })
    let out = ''
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c))
    child.once('error', () => resolve(null))
    child.once('exit', () => resolve(/Version:\s*(\d+\.\d+)/.exec(out)?.[1] ?? null))
  })
  if (!version) return { ok: false, reason: 'criu is not installed' }
  const [major, minor] = version.split('.').map(Number) as [number, number]
  if (major < 4 || (major === 4 && minor < 2)) return { ok: false, reason: `criu ${version} is too old (4.2 or later works on recent kernels)` }
  // A working CRIU is necessary, not sufficient: live moves are not implemented yet.
  return { ok: false, reason: `criu ${version} found, but live moves are not implemented in this agent` }
}

export async function probeVolumes(o: { sharedDir: string | null; dockerEngine: 'docker' | 'podman' | null }): Promise<TVolumeCapability> {
  const [shared, rsync, checkpoint] = await Promise.all([probeShared(o.sharedDir), probeRsync(), probeCheckpoint(o.dockerEngine)])
  const fence = probeSelfFence()
  return {
    drivers: shared ? ['local'] : ['local', 'shared'],
    ...(shared && o.sharedDir && { sharedReason: shared }),
    copy: rsync.ok ? 'rsync' : null,
    ...(rsync.ok && { copyAfterStop: true }),
    ...(!rsync.ok && { copyReason: rsync.reason }),
    selfFence: fence.ok,
    ...(!fence.ok && { selfFenceReason: fence.reason }),
    checkpoint,
  }
}
