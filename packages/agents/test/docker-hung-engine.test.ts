import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { join } from 'node:path'
import Docker from 'dockerode'
import { afterEach, describe, expect, it } from 'vitest'
import { createDockerDriver } from '../src/runtime/docker/driver'
import { createStateStore } from '../src/state-store'
import { createSupervisor } from '../src/supervisor'
import { makeInstance, tempDir, testLogger, waitFor } from './helpers'

// A hung engine: it accepts the connection and reads the request, and then some requests are never answered.
const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

async function hungEngine(answer: (req: IncomingMessage, res: ServerResponse) => boolean) {
  const dir = await tempDir()
  cleanups.push(dir.cleanup)
  const socketPath = join(dir.path, 'engine.sock')
  const hanging = new Set<ServerResponse>()
  const server = createServer((req, res) => {
    if (!answer(req, res)) hanging.add(res)
  })
  await new Promise<void>((r) => server.listen(socketPath, r))
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        for (const res of hanging) res.destroy()
        server.closeAllConnections()
        server.close(() => r())
      }),
  )
  return { docker: new Docker({ socketPath }), requests: () => hanging.size }
}
const json = (res: ServerResponse, status: number, body: unknown) => (res.writeHead(status, { 'content-type': 'application/json' }), res.end(JSON.stringify(body)), true)
const instance = () => makeInstance({ spec: { driver: 'docker', image: 'localhost/busybox:1', command: null, args: [] } })

describe('docker driver against a hung engine', () => {
  it('fails a start whose engine never answers with a clear error, within the deadline', async () => {
    const engine = await hungEngine(() => false)
    const driver = createDockerDriver({ docker: engine.docker, nodeName: 'n1', logger: testLogger, callTimeoutMs: 300 })
    const t0 = performance.now()
    await expect(driver.start(instance())).rejects.toThrow('cannot inspect image "localhost/busybox:1": the container engine did not answer image inspect within 0.3 s')
    expect(performance.now() - t0).toBeLessThan(5_000)
    // Nothing else waits forever either: re-adoption, orphans, usage, release.
    const rec = { instanceId: instance().instanceId, driver: 'docker' as const, containerId: 'abc', pid: null, processStartTime: null, specHash: '', generation: 1, startedAt: new Date().toISOString(), restarts: 0, state: 'running' as const, exitCode: null, message: null, stopGraceSeconds: 1, logCursor: null, fence: null, lastExit: null }
    expect(await driver.adopt(rec)).toBeNull()
    await expect(driver.discover!(new Set())).rejects.toThrow(/did not answer list containers/)
    await expect(driver.removeOrphans!(new Set())).rejects.toThrow(/did not answer list containers/)
    expect((await driver.usage!([])).size).toBe(0)
    await driver.release!(rec.instanceId)
  })

  it('an engine that hangs on create: the instance leaves starting with the engine named in its error, and is retried', async () => {
    const engine = await hungEngine((req, res) => {
      if (req.method === 'GET' && /\/images\/.+\/json/.test(req.url ?? '')) return json(res, 200, { Id: 'sha256:1' })
      if (req.method === 'GET' && /\/containers\/.+\/json/.test(req.url ?? '')) return json(res, 404, { message: 'no such container' })
      return false
    })
    const dir = await tempDir()
    cleanups.push(dir.cleanup)
    const sup = createSupervisor({
      drivers: { docker: createDockerDriver({ docker: engine.docker, nodeName: 'n1', logger: testLogger, callTimeoutMs: 300 }) },
      store: createStateStore(dir.path),
      logger: testLogger,
      backoff: { baseMs: 50 },
    })
    cleanups.push(() => sup.detach())
    const inst = instance()
    sup.apply([inst])
    const report = await waitFor('the start to fail', async () => {
      const r = sup.report(inst.instanceId)
      return r && r.state !== 'starting' && r.state !== 'pending' && r.message ? r : null
    }, 15_000)
    expect(report.message).toContain('cannot create the container: the container engine did not answer create within 0.3 s')
    // Not terminal: the engine may come back.
    await waitFor('a retry', async () => (sup.report(inst.instanceId)?.restarts ?? 0) >= 1, 15_000)
  })
})
