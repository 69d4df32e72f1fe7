/**
 * Opt-in (ALVEARY_TEST_ENGINE_RESTART=1): kills and restarts the Podman service of
 * scripts/podman/start.sh, which would disturb the other docker tests running in parallel.
 */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { createDockerDriver } from '../src/runtime/docker/driver'
import { createStateStore } from '../src/state-store'
import { createSupervisor, type LogEntry } from '../src/supervisor'
import { instanceContainers, removeNodeContainers, testEngine, TEST_IMAGE } from './engine'
import { makeInstance, tempDir, testLogger, waitFor } from './helpers'

const enabled = process.env.ALVEARY_TEST_ENGINE_RESTART === '1'
const engine = enabled ? await testEngine() : null
const podmanDir = process.env.ALVEARY_PODMAN_DIR ?? '/tmp/alveary-podman'
const startScript = fileURLToPath(new URL('../../../scripts/podman/start.sh', import.meta.url))

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

describe.runIf(enabled && engine)('docker driver while the Podman service restarts', () => {
  it('keeps watching the container and following its output', async () => {
    const dir = await tempDir()
    cleanups.push(dir.cleanup)
    const lines: LogEntry[] = []
    const sup = createSupervisor({
      drivers: { docker: createDockerDriver({ docker: engine!.docker, nodeName: 'engine-restart', logger: testLogger, engine: engine!.engine }) },
      store: createStateStore(dir.path),
      logger: testLogger,
      backoff: { baseMs: 200 },
      onLogs: (e, shipped) => (lines.push(...e), shipped()),
    })
    cleanups.push(async () => {
      await sup.stopAll()
      sup.detach()
      await removeNodeContainers(engine!.docker, 'engine-restart')
    })
    const inst = makeInstance({
      spec: { driver: 'docker', image: TEST_IMAGE, command: 'sh', args: ['-c', 'i=0; while true; do i=$((i+1)); echo "out $i"; sleep 0.1; done'], ports: [] },
    })
    sup.apply([inst])
    await waitFor('some output', () => lines.length >= 3, 10_000)

    process.kill(Number(readFileSync(`${podmanDir}/service.pid`, 'utf8')), 'SIGKILL')
    await waitFor('the engine is gone', () => engine!.docker.ping().then(() => false, () => true), 10_000)
    execFileSync(startScript, { stdio: 'ignore' })
    const n = lines.length
    await waitFor('output again', () => lines.length > n + 5, 15_000)
    const counters = lines.map((l) => Number(l.line.slice(4)))
    expect(new Set(counters).size).toBe(counters.length) // nothing twice

    // The container still runs and a kill behind the agent's back is still noticed.
    const [c] = await instanceContainers(engine!.docker, inst.instanceId)
    await engine!.docker.getContainer(c!.Id).kill()
    await waitFor('restarted', () => sup.report(inst.instanceId)?.state === 'running' && sup.report(inst.instanceId)?.restarts === 1, 15_000)
  })
})
