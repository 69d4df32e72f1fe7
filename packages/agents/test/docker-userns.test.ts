/**
 * User namespaces on a real engine (rootful Podman here): whether the engine gives a container a
 * namespace of its own, and what that does to the container's root and to its volumes. CI gives
 * user `containers` a range in /etc/subuid and /etc/subgid (.ci/run); elsewhere the tests that
 * need one are skipped with the engine's answer.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { containerCapability, probeUsernsAuto } from '../src/runtime/docker/capability'
import { createDockerDriver } from '../src/runtime/docker/driver'
import { probeDocker } from '../src/runtime/docker/endpoint'
import type { InstanceHandle, LogLine } from '../src/runtime/types'
import { removeNodeContainers, testEngine, TEST_IMAGE } from './engine'
import { makeInstance, testLogger, waitFor } from './helpers'

const engine = await testEngine()
const rootfulPodman = engine?.engine === 'podman' && !(((await engine.docker.info()) as { SecurityOptions?: string[] }).SecurityOptions ?? []).some((o) => o.includes('name=rootless'))
const probe = rootfulPodman ? await probeUsernsAuto(engine!.docker) : null
if (rootfulPodman && !probe!.ok) {
  if (process.env.CI === 'true') throw new Error(`CI's Podman must give containers a user namespace (.ci/run adds a range for "containers" to /etc/subuid and /etc/subgid): ${probe!.reason}`)
  console.warn(`[skipped] containers in user namespaces: ${probe!.reason}`)
}
const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

describe.skipIf(!probe?.ok)('containers in a user namespace of their own (Podman)', () => {
  it('container root is an unprivileged host uid, and its volume stays writable when it starts again with other ids', async () => {
    const node = `un-${randomUUID().slice(0, 8)}`
    cleanups.push(() => removeNodeContainers(engine!.docker, node))
    const driver = createDockerDriver({ docker: engine!.docker, nodeName: node, logger: testLogger, engine: 'podman', usernsAuto: true })
    // The volume folder as the agent makes it: root's, 0700, under root-only folders.
    const tmp = await mkdtemp(path.join(os.tmpdir(), 'alveary-userns-'))
    cleanups.push(() => rm(tmp, { recursive: true, force: true }))
    const hostPath = path.join(tmp, 'volumes', 'v1', 'data')
    await mkdir(hostPath, { recursive: true, mode: 0o700 })
    await chmod(tmp, 0o700)
    await writeFile(path.join(hostPath, 'from-before'), 'written on the host\n')
    const mounts = [{ volumeId: 'v1', name: 'data', hostPath, path: '/data', fence: null }]
    const script = 'echo "map $(cat /proc/self/uid_map)"; (cat /data/from-before && echo "run $$" >> /data/runs && echo write-ok) || echo write-failed; echo done; sleep 600'
    const inst = makeInstance({ spec: { driver: 'docker', image: TEST_IMAGE, command: 'sh', args: ['-c', script], memoryMb: 64 } })

    async function run(): Promise<{ hostUid: number; size: number; text: string; handle: InstanceHandle }> {
      const handle = await driver.start(inst, {}, { mounts })
      const lines: LogLine[] = []
      const follower = handle.followLogs(null, (l) => lines.push(...l))
      const text = () => lines.map((l) => l.line).join('\n')
      try {
        await waitFor('the container’s report', () => /^done$/m.test(text()), 60_000)
      } catch (err) {
        throw new Error(`${(err as Error).message}; it said: ${text()}`)
      } finally {
        follower.abort()
      }
      const [, inside, host, size] = /^map\s+(\d+)\s+(\d+)\s+(\d+)/m.exec(text()) ?? []
      expect(inside, text()).toBe('0')
      return { hostUid: Number(host), size: Number(size), text: text(), handle }
    }

    const first = await run()
    cleanups.push(async () => {
      await driver.release(inst.instanceId)
    })
    // Not the identity map (0 0 4294967295): root inside is a high, unprivileged uid outside.
    expect(first.hostUid).toBeGreaterThan(65_535)
    expect(first.size).toBe(65_536)
    expect(first.text).toContain('written on the host')
    expect(first.text).toContain('write-ok')
    expect((await stat(path.join(hostPath, 'runs'))).uid).toBe(first.hostUid)
    const info = await engine!.docker.getContainer(`alveary-${inst.instanceId}`).inspect()
    expect(info.HostConfig).toMatchObject({ UsernsMode: expect.stringMatching(/^(auto|private)/) })

    // Another container holds the first one's ids meanwhile, so the next start gets others.
    const squatter = makeInstance({ spec: { driver: 'docker', image: TEST_IMAGE, command: 'sh', args: ['-c', 'echo "map $(cat /proc/self/uid_map)"; echo done; sleep 600'], memoryMb: 32 } })
    await first.handle.stop(0)
    await driver.release(inst.instanceId)
    const other = await driver.start(squatter)
    cleanups.push(async () => {
      await other.stop(0)
      await driver.release(squatter.instanceId)
    })
    const second = await run()
    expect(second.hostUid).not.toBe(first.hostUid)
    expect(second.text).toContain('write-ok')
    expect((await readFile(path.join(hostPath, 'runs'), 'utf8')).trim().split('\n')).toHaveLength(2)
    expect((await stat(path.join(hostPath, 'runs'))).uid).toBe(second.hostUid)
    await second.handle.stop(0)
  })
})

const podmanHere = spawnSync('podman', ['--version']).status === 0 && process.getuid?.() === 0
describe.skipIf(!rootfulPodman || !podmanHere)('the user-namespace probe', () => {
  it('reports off, with the engine’s words, when Podman has no id range for its containers', async () => {
    // A Podman of its own whose containers' ranges would come from a user without any.
    const dir = await mkdtemp(path.join(os.tmpdir(), 'alveary-userns-engine-'))
    const conf = {
      storage: `[storage]\ndriver = "vfs"\ngraphroot = "${dir}/storage"\nrunroot = "${dir}/run"\n[storage.options]\nroot-auto-userns-user = "alveary-no-range"\n`,
      containers: `[network]\nnetwork_config_dir = "${dir}/networks"\n[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\nruntime = "runc"\ntmp_dir = "${dir}/tmp"\n`,
    }
    await mkdir(path.join(dir, 'tmp'))
    await mkdir(path.join(dir, 'networks'))
    await writeFile(path.join(dir, 'storage.conf'), conf.storage)
    await writeFile(path.join(dir, 'containers.conf'), conf.containers)
    const sock = path.join(dir, 'podman.sock')
    const service: ChildProcess = spawn('podman', ['system', 'service', '--time=0', `unix://${sock}`], {
      cwd: dir,
      env: { ...process.env, CONTAINERS_CONF: path.join(dir, 'containers.conf'), CONTAINERS_STORAGE_CONF: path.join(dir, 'storage.conf') },
      stdio: 'ignore',
    })
    const exited = new Promise((r) => service.once('exit', r))
    cleanups.push(async () => {
      service.kill('SIGTERM')
      await exited
      await rm(dir, { recursive: true, force: true })
    })
    const answering = await waitFor('the temporary engine', async () => {
      const p = await probeDocker(`unix://${sock}`)
      return p.ok ? p : null
    }, 20_000, 100)
    const off = await probeUsernsAuto(answering.docker)
    expect(off).toEqual({ ok: false, reason: expect.stringContaining('could not find enough available IDs') })
    expect(containerCapability('podman', [], off)).toMatchObject({ userns: false, reason: expect.stringContaining('/etc/subuid') })
    // The probe left nothing behind: no container, no image.
    expect(await answering.docker.listContainers({ all: true })).toEqual([])
    expect(await answering.docker.listImages()).toEqual([])
  })
})
