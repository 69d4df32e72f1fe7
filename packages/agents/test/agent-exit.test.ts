import { randomUUID } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import type { TDesired, TDesiredLb } from '@alveary/core/protocol'
import { createAgent } from '../src/agent'
import { agentConfig, freeListenerPort, haproxyHere, freePort, httpGet, isAlive, killGroup, makeInstance, nodeScript, tempDir, testLogger, waitFor } from './helpers'

// `npm start`'s agent (--stop-on-exit) on Ctrl-C: its exit must end in bounded time and take
// HAProxy with it, or whoever waits for it (start-all, a test runner) kills it half-way and the
// instances, namespaces and HAProxy stay behind holding their ports (seen after the e2e suite).
const haveHaproxy = haproxyHere('skipping the agent-exit test')

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

describe.skipIf(!haveHaproxy)('an agent that stops everything on exit', () => {
  it('gives each instance at most --exit-grace, whatever its app asks, and stops its HAProxy', async () => {
    const dir = await tempDir()
    cleanups.push(dir.cleanup)
    const [appPort, lbPort] = [await freePort(), await freeListenerPort()]
    // Ignores SIGTERM and asks for two minutes to stop.
    const stubborn = makeInstance({
      spec: {
        ...nodeScript(`process.on('SIGTERM', () => {}); require('http').createServer((q, s) => s.end('stubborn')).listen(process.env.PORT)`),
        ports: [{ name: 'http', containerPort: null, hostPort: appPort }],
        stopGraceSeconds: 120,
      },
    })
    const lb: TDesiredLb = {
      id: randomUUID(),
      name: 'front',
      algorithm: 'roundrobin',
      stickySeconds: null,
      drainSeconds: 1,
      listeners: [{ port: lbPort, protocol: 'http', routes: [{ host: null, pathPrefix: null, backend: 'all' }] }],
      backends: [{ name: 'all', servers: [{ id: stubborn.instanceId, address: '127.0.0.1', port: appPort, weight: 100, state: 'ready' }] }],
    }
    const agent = createAgent(agentConfig(dir.path, { joinToken: 'join-token-0123456789', stopOnExit: true, exitGraceSeconds: 1, lbDriver: 'haproxy' }), { logger: testLogger })
    cleanups.push(() => agent.shutdown({ stopInstances: true }))
    await agent.start()
    expect(agent.lbDriver).toBe('haproxy')
    const desired: TDesired = { type: 'desired', generation: 1, instances: [stubborn], networks: [], loadBalancers: [lb] }
    agent.applyDesired(desired)
    const { pid } = await waitFor('running', () => agent.reports().find((r) => r.state === 'running' && r.pid), 20_000)
    cleanups.push(() => killGroup(pid))
    expect(await waitFor('the LB answers', () => httpGet(`http://127.0.0.1:${lbPort}/`).catch(() => null), 20_000)).toBe('stubborn')
    const haproxy = Number((await readFile(join(dir.path, 'haproxy', 'haproxy.pid'), 'utf8')).trim())
    cleanups.push(() => void (isAlive(haproxy) && process.kill(haproxy, 'SIGKILL')))
    expect(isAlive(haproxy)).toBe(true)

    const started = Date.now()
    await agent.shutdown()
    // Its own grace would be 120 s: the exit grace of 1 s applied (the bound is loose for a busy machine).
    expect(Date.now() - started).toBeLessThan(60_000)
    expect(isAlive(pid!)).toBe(false)
    expect(isAlive(haproxy)).toBe(false)
  })
})
