/**
 * The docker driver's hardening on a real engine (Podman here): what a tenant's container can
 * do to the node. Skipped without an engine, with the reason (a failure in CI).
 */
import { randomUUID } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import { createDockerDriver } from '../src/runtime/docker/driver'
import type { LogLine } from '../src/runtime/types'
import { removeNodeContainers, testEngine, TEST_IMAGE } from './engine'
import { makeInstance, testLogger, waitFor } from './helpers'

const engine = await testEngine()
const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

describe.skipIf(!engine)('docker driver hardening against a real engine', () => {
  it('a container has no privileges to escalate, a minimal capability set, and its pids limit is the kernel’s', async () => {
    const node = `hd-${randomUUID().slice(0, 8)}`
    cleanups.push(() => removeNodeContainers(engine!.docker, node))
    const driver = createDockerDriver({ docker: engine!.docker, nodeName: node, logger: testLogger, engine: engine!.engine, pidsLimit: 40 })
    const script = [
      'for k in CapEff NoNewPrivs; do grep "^$k" /proc/self/status; done',
      // The pids limit as the kernel enforces it (v1 or v2 cgroup view inside the container).
      'echo "pids.max $(cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max)"',
      'mknod /tmp/dev b 8 0 2>/dev/null && echo mknod-ok || echo mknod-denied',
      'sleep 600',
    ].join('; ')
    const inst = makeInstance({ spec: { driver: 'docker', image: TEST_IMAGE, command: 'sh', args: ['-c', script], memoryMb: 64 } })
    const handle = await driver.start(inst)
    cleanups.push(async () => {
      await handle.stop(0)
      await driver.release(inst.instanceId)
    })
    const lines: LogLine[] = []
    const follower = handle.followLogs(null, (l) => lines.push(...l))
    cleanups.push(async () => follower.abort())
    const text = () => lines.map((l) => l.line).join('\n')
    await waitFor('the container’s report', () => /mknod-/.test(text()), 60_000).catch((err) => {
      throw new Error(`${(err as Error).message}; it said: ${text()}`)
    })

    const info = await engine!.docker.getContainer(`alveary-${inst.instanceId}`).inspect()
    expect(info.HostConfig).toMatchObject({ Privileged: false, PidsLimit: 40, IpcMode: expect.stringMatching(/private|shareable/) })
    expect(info.HostConfig.SecurityOpt?.join(',')).toContain('no-new-privileges')
    // In the container: no_new_privs, and none of the dangerous capabilities (CAP_SYS_ADMIN is bit 21, CAP_NET_RAW 13, CAP_MKNOD 27).
    expect(text()).toMatch(/NoNewPrivs:\s+1/)
    const capEff = BigInt(`0x${/CapEff:\s+([0-9a-f]+)/.exec(text())![1]}`)
    for (const bit of [21n, 13n, 27n]) expect((capEff >> bit) & 1n).toBe(0n)
    expect(text()).toContain('mknod-denied')
    expect(text()).toMatch(/pids\.max 40/)
  })

  it('an app’s read-only root: the image’s files cannot change, its /tmp can; its own pids limit below the node’s', async () => {
    const node = `hd-${randomUUID().slice(0, 8)}`
    cleanups.push(() => removeNodeContainers(engine!.docker, node))
    const driver = createDockerDriver({ docker: engine!.docker, nodeName: node, logger: testLogger, engine: engine!.engine, pidsLimit: 40 })
    const script = [
      'touch /etc/pwned 2>/dev/null && echo etc-written || echo etc-denied',
      'touch /tmp/mine && echo tmp-written || echo tmp-denied',
      'echo "pids.max $(cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max)"',
      'echo done; sleep 600',
    ].join('; ')
    const inst = makeInstance({ spec: { driver: 'docker', image: TEST_IMAGE, command: 'sh', args: ['-c', script], memoryMb: 64, pidsMax: 24, readOnlyRootfs: true } })
    const handle = await driver.start(inst)
    cleanups.push(async () => {
      await handle.stop(0)
      await driver.release(inst.instanceId)
    })
    const lines: LogLine[] = []
    const follower = handle.followLogs(null, (l) => lines.push(...l))
    cleanups.push(async () => follower.abort())
    const text = () => lines.map((l) => l.line).join('\n')
    await waitFor('the container’s report', () => /done/.test(text()), 60_000).catch((err) => {
      throw new Error(`${(err as Error).message}; it said: ${text()}`)
    })
    expect(text()).toContain('etc-denied')
    expect(text()).toContain('tmp-written')
    expect(text()).toMatch(/pids\.max 24/)
    const info = await engine!.docker.getContainer(`alveary-${inst.instanceId}`).inspect()
    expect(info.HostConfig).toMatchObject({ ReadonlyRootfs: true, PidsLimit: 24 })
  })
})
