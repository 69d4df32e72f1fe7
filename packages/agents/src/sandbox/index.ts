/**
 * The sandbox of process instances (see bwrap.ts for what it is made of). The agent probes at
 * start what this node can enforce and advertises it: `sandboxed` only when every part works
 * (root, bwrap, setpriv, the namespaces, memory/cpu/pids cgroups); otherwise process
 * instances run as before and the node says so (`unsandboxed`, with the reason).
 */
import { execFile } from 'node:child_process'
import { chown, lstat, mkdir, readlink, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { TDesiredInstance, TSandboxCapability } from '@alveary/core/protocol'
import { appDirRefusal, sandboxArgv, SYSTEM_DIRS } from './bwrap'
import { detectCgroups, type Cgroups, type InstanceCgroup } from './cgroups'
import { createEtcMirror, type EtcMirror } from './etc'

export { SANDBOX_HOME } from './bwrap'
export type { InstanceCgroup } from './cgroups'

const run = promisify(execFile)

export interface SandboxOptions {
  /** cgroup folder (under the agent's own) holding this agent's instances: one per agent on a machine. */
  group: string
  /** Threads and processes per instance (pids.max): the default, and the most an app gets. */
  pidsMax: number
  /** Host paths never visible inside (the agent's data folder, the platform's). */
  hide: readonly string[]
  /** A folder of the agent's for the /etc its sandboxes see (etc.ts). */
  etcDir: string
}

export interface Sandbox {
  readonly capability: TSandboxCapability
  /** The command line of a sandboxed start and the cgroup it runs in (created fresh, limits set). */
  prepare(
    instance: TDesiredInstance,
    p: { appDir: string; instanceDir: string; mounts: ReadonlyArray<{ hostPath: string; path: string }>; netns?: string; resolvConf?: string },
  ): Promise<{ file: string; argv: string[]; cgroup: InstanceCgroup }>
  adopt(instanceId: string, pid: number): InstanceCgroup | null
  /** Kills what is left of a stopped instance and removes its cgroup. */
  release(instanceId: string): Promise<void>
}

/** The app's pids limit, never above the node's (its default when the app names none). */
export const pidsLimit = (asked: number | undefined, nodeMax: number): number => Math.min(asked ?? nodeMax, nodeMax)

export type SandboxProbe = { ok: true; sandbox: Sandbox } | { ok: false; reason: string }

async function systemDirs(): Promise<Array<{ path: string; symlink: string | null }>> {
  const out: Array<{ path: string; symlink: string | null }> = []
  for (const path of SYSTEM_DIRS) {
    try {
      const st = await lstat(path)
      out.push({ path, symlink: st.isSymbolicLink() ? await readlink(path) : null })
    } catch {
      // not on this system
    }
  }
  return out
}

export async function probeSandbox(opts: SandboxOptions): Promise<SandboxProbe> {
  if (process.platform !== 'linux') return { ok: false, reason: 'process sandboxes need Linux (namespaces, cgroups)' }
  if (process.getuid?.() !== 0) return { ok: false, reason: 'the agent is not root (per-tenant uids, namespaces and cgroups need root)' }
  for (const [tool, pkg] of [['bwrap', 'bubblewrap'], ['setpriv', 'util-linux'], ['nsenter', 'util-linux']] as const) {
    try {
      await run(tool, ['--version'])
    } catch {
      return { ok: false, reason: `${tool} is missing (install ${pkg})` }
    }
  }
  const cg = await detectCgroups(opts.group)
  if (!cg.ok) return cg
  const dirs = await systemDirs()
  const etc = createEtcMirror(opts.etcDir)
  // The real thing once: namespaces, mounts and the uid switch must all work on this kernel.
  try {
    const { argv } = sandboxArgv({
      command: '/bin/sh',
      args: ['-c', 'test "$(id -u)" = 65534 && test ! -e /etc/shadow'],
      runAs: { uid: 65534, gid: 65534 },
      appDir: '/usr',
      workDir: '/tmp',
      mounts: [],
      hide: [],
      cgroupProcs: [],
      hostname: 'probe',
      systemDirs: dirs,
      etcDir: await etc.current(),
    })
    await run('/bin/sh', argv, { timeout: 10_000 })
  } catch (err) {
    return { ok: false, reason: `bwrap cannot build a sandbox here: ${((err as { stderr?: string }).stderr || (err as Error).message).trim().slice(0, 300)}` }
  }
  return { ok: true, sandbox: createSandbox(opts, cg.cgroups, dirs, etc) }
}

function createSandbox(opts: SandboxOptions, cgroups: Cgroups, dirs: Array<{ path: string; symlink: string | null }>, etc: EtcMirror): Sandbox {
  return {
    capability: { mode: 'sandboxed', tool: 'bwrap', cgroups: cgroups.version === 2 ? 'v2' : 'v1', limits: [...cgroups.controllers], reason: null },
    async prepare(instance, p) {
      const { runAs, spec } = instance
      const refusal = appDirRefusal(p.appDir, await stat(p.appDir), runAs)
      if (refusal) throw new Error(refusal)
      // The only writable folder of the instance that outlives a restart; its own, nobody else's.
      const workDir = join(p.instanceDir, 'work')
      await mkdir(workDir, { recursive: true, mode: 0o700 })
      await chown(workDir, runAs.uid, runAs.gid)
      const cgroup = await cgroups.create(instance.instanceId, { memoryMb: spec.memoryMb, cpuMillis: spec.cpuMillis, pidsMax: pidsLimit(spec.pidsMax, opts.pidsMax) })
      const { file, argv } = sandboxArgv({
        command: spec.command!,
        args: spec.args,
        runAs,
        appDir: p.appDir,
        workDir,
        mounts: p.mounts,
        hide: opts.hide,
        cgroupProcs: cgroup.procsFiles,
        ...(p.netns && { netns: p.netns }),
        ...(p.resolvConf && { resolvConf: p.resolvConf }),
        hostname: `${instance.appName}-${instance.ordinal}`.slice(0, 63),
        systemDirs: dirs,
        etcDir: await etc.current(),
      })
      return { file, argv, cgroup }
    },
    adopt: (instanceId, pid) => cgroups.adopt(instanceId, pid),
    async release(instanceId) {
      const cg = cgroups.existing(instanceId)
      await cg.killAll()
      await cg.remove()
    },
  }
}
