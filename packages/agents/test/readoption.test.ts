import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import type { TDesired } from '@alveary/core/protocol'
import { createAgent, type Agent } from '../src/agent'
import { instanceDir } from '../src/runtime/process/driver'
import { agentConfig, freePort, httpGet, isAlive, killGroup, makeInstance, nodeScript, retireNode, tempDir, testLogger, waitFor } from './helpers'

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

function newAgent(dataDir: string): Agent {
  const agent = createAgent(agentConfig(dataDir), {
    logger: testLogger,
    adoptedPollMs: 100,
    restartBackoff: { baseMs: 100 },
  })
  cleanups.push(() => agent.shutdown({ stopInstances: false }))
  return agent
}

describe('re-adoption', () => {
  it('a new agent on the same data dir adopts the running process instead of restarting it', async () => {
    const dir = await tempDir()
    cleanups.push(dir.cleanup, () => retireNode(dir.path))
    const port = await freePort()
    const inst = makeInstance({
      spec: {
        // A nonce per process (in a sandbox's PID namespace process.pid is the same small number every run).
        ...nodeScript(`const run = Math.random(); require('http').createServer((q, s) => s.end('run ' + run)).listen(process.env.PORT)`),
        ports: [{ name: 'http', containerPort: null, hostPort: port }],
      },
    })
    const desired: TDesired = { type: 'desired', generation: 1, instances: [inst], networks: [] }

    const first = newAgent(dir.path)
    await first.restore()
    first.applyDesired(desired)
    const running = await waitFor('running', () => first.reports().find((r) => r.state === 'running'))
    const pid = running.pid!
    cleanups.push(() => killGroup(pid))
    const statePath = join(instanceDir(dir.path, inst.instanceId), 'state.json')
    await waitFor('state persisted', async () => JSON.parse(await readFile(statePath, 'utf8')).pid === pid)
    expect((await stat(statePath)).mode & 0o777).toBe(0o600)
    const before = await waitFor('the process answers', () => httpGet(`http://127.0.0.1:${port}/`).catch(() => null), 15_000)
    // The agent goes away (as on a crash or an upgrade) without stopping anything.
    await first.shutdown({ stopInstances: false })
    expect(isAlive(pid)).toBe(true)

    const second = newAgent(dir.path)
    await second.restore()
    // Before any desired state: adopted and reported running, nothing started.
    expect(second.reports()).toEqual([expect.objectContaining({ instanceId: inst.instanceId, state: 'running', pid, restarts: 0 })])
    second.applyDesired({ ...desired, generation: 2 })
    await second.settled()
    expect(second.reports()).toEqual([expect.objectContaining({ state: 'running', pid, restarts: 0 })])
    // "running" means started, not listening yet: wait until it answers (the same process).
    expect(await waitFor('the adopted process answers', () => httpGet(`http://127.0.0.1:${port}/`).catch(() => null), 15_000)).toBe(before)

    // It is not our child, yet its death is noticed (polling) and the restart policy applies.
    process.kill(pid, 'SIGKILL')
    const restarted = await waitFor('restarted', () => second.reports().find((r) => r.state === 'running' && r.pid !== pid), 5000)
    expect(restarted.restarts).toBe(1)
    cleanups.push(() => killGroup(restarted.pid))
    const after = await waitFor('new process answers', () => httpGet(`http://127.0.0.1:${port}/`).then((a) => (a === before ? null : a), () => null), 15_000)
    expect(after).toMatch(/^run /)

    // Left running, then a third agent whose first desired state no longer wants it: stopped and forgotten.
    await second.shutdown({ stopInstances: false })
    const third = newAgent(dir.path)
    await third.restore()
    expect(third.reports()[0]).toMatchObject({ state: 'running', pid: restarted.pid, restarts: 1 })
    third.applyDesired({ type: 'desired', generation: 3, instances: [], networks: [] })
    await third.settled()
    expect(third.reports()).toEqual([])
    expect(isAlive(restarted.pid!)).toBe(false)
    await expect(stat(statePath)).rejects.toThrow()
  })

  it('never starts anything before the first desired state, and reports dead processes as exited', async () => {
    const dir = await tempDir()
    cleanups.push(dir.cleanup, () => retireNode(dir.path))
    const inst = makeInstance({ spec: nodeScript('setInterval(() => {}, 1000)') })
    const first = newAgent(dir.path)
    await first.restore()
    first.applyDesired({ type: 'desired', generation: 1, instances: [inst], networks: [] })
    const { pid } = await waitFor('running', () => first.reports().find((r) => r.state === 'running'))
    await first.settled()
    await first.shutdown({ stopInstances: false })
    killGroup(pid)
    await waitFor('dead', () => !isAlive(pid!))

    const second = newAgent(dir.path)
    await second.restore()
    await second.settled()
    expect(second.reports()).toEqual([expect.objectContaining({ state: 'exited', pid: null, restarts: 0, lastExit: expect.objectContaining({ reason: 'lost', exitCode: null }) })])
    second.applyDesired({ type: 'desired', generation: 1, instances: [inst], networks: [] })
    const back = await waitFor('restarted by policy', () => second.reports().find((r) => r.state === 'running'))
    cleanups.push(() => killGroup(back.pid))
    expect(back.restarts).toBe(1)
    expect(back.lastExit).toMatchObject({ reason: 'lost', message: 'the process exited while no agent was watching it' })
    await second.shutdown({ stopInstances: true })
    expect(isAlive(back.pid!)).toBe(false)

    // Stopped on purpose (--stop-on-exit): the next agent sees "stopped", and starts it fresh, not as a crash.
    const third = newAgent(dir.path)
    await third.restore()
    // How that run ended comes from the state file.
    expect(third.reports()).toEqual([expect.objectContaining({ state: 'stopped', pid: null, restarts: 1, lastExit: expect.objectContaining({ reason: 'stopped', message: expect.stringMatching(/^stopped \(the agent is shutting down\)/) }) })])
    third.applyDesired({ type: 'desired', generation: 2, instances: [inst], networks: [] })
    const fresh = await waitFor('started', () => third.reports().find((r) => r.state === 'running'))
    cleanups.push(() => killGroup(fresh.pid))
    expect(fresh.restarts).toBe(1)
    await third.shutdown({ stopInstances: true })
  })
})
