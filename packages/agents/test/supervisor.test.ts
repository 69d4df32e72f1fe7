import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { ZInstanceReport, type TDesiredInstance, type TInstanceReport } from '@alveary/core/protocol'
import { createProcessDriver, instanceDir } from '../src/runtime/process/driver'
import { createStateStore } from '../src/state-store'
import { createSupervisor, type RestartBackoff, type Supervisor } from '../src/supervisor'
import { freePort, httpGet, isAlive, killGroup, makeInstance, nodeScript, tempDir, testLogger, waitFor } from './helpers'

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

async function setup(backoff: Partial<RestartBackoff> = {}) {
  const dir = await tempDir()
  const changes: Array<TInstanceReport & { at: number }> = []
  const sup = createSupervisor({
    drivers: { process: createProcessDriver({ dataDir: dir.path }) },
    store: createStateStore(dir.path),
    logger: testLogger,
    backoff: { baseMs: 200, capMs: 5000, resetAfterMs: 10_000, ...backoff },
    onChange: (r) => changes.push({ ...r, at: Date.now() }),
  })
  cleanups.push(async () => {
    const pids = sup.processGroups()
    await sup.stopAll()
    sup.detach()
    pids.forEach(killGroup)
    // detach() records each worker's last state: let those writes land before the folder goes.
    await sup.flush()
    await dir.cleanup()
  })
  return { dataDir: dir.path, sup, changes }
}

const running = (sup: Supervisor, id: string) => {
  const r = sup.report(id)
  return r?.state === 'running' ? r : undefined
}

describe('process driver + supervisor', () => {
  it('starts a process with PORT env set; the port answers over HTTP; logs go to files', async () => {
    const { dataDir, sup } = await setup()
    const [p1, p2] = [await freePort(), await freePort()]
    process.env.AGENT_TEST_SECRET = 'must-not-leak'
    const inst = makeInstance({
      appName: 'shop',
      ordinal: 3,
      spec: {
        ...nodeScript(`
          const http = require('http')
          http.createServer((q, s) => s.end(JSON.stringify(process.env))).listen(process.env.PORT, () => console.log('listening on ' + process.env.PORT))
        `),
        env: { GREETING: 'hi', PORT: 'overridden-by-platform' },
        ports: [
          { name: 'http', containerPort: null, hostPort: p1 },
          { name: 'admin-ui', containerPort: null, hostPort: p2 },
        ],
      },
    })
    sup.apply([inst])
    const r = await waitFor('running', () => running(sup, inst.instanceId))
    expect(r.pid).toBeGreaterThan(0)
    const env = JSON.parse(await waitFor('HTTP answer', () => httpGet(`http://127.0.0.1:${p1}/`))) as Record<string, string>
    expect(env).toMatchObject({
      PORT: String(p1),
      PORT_HTTP: String(p1),
      PORT_ADMIN_UI: String(p2),
      GREETING: 'hi',
      ALVEARY_INSTANCE_ID: inst.instanceId,
      ALVEARY_APP: 'shop',
      ALVEARY_TENANT_ID: inst.tenantId,
      ALVEARY_ORDINAL: '3',
      PATH: process.env.PATH,
    })
    expect(env.AGENT_TEST_SECRET).toBeUndefined()
    const logDir = instanceDir(dataDir, inst.instanceId)
    await waitFor('stdout.log', async () => (await readFile(join(logDir, 'stdout.log'), 'utf8')).includes(`listening on ${p1}`))
    const state = JSON.parse(await readFile(join(logDir, 'state.json'), 'utf8'))
    expect(state).toMatchObject({ instanceId: inst.instanceId, pid: r.pid, state: 'running', restarts: 0 })
    expect(state.processStartTime).toBeTypeOf('number')

    sup.apply([])
    await sup.settled()
    expect(sup.report(inst.instanceId)).toBeUndefined()
    expect(isAlive(r.pid!)).toBe(false)
    await expect(httpGet(`http://127.0.0.1:${p1}/`)).rejects.toThrow()
  })

  it('restarts a crashing process with exponential backoff and counts restarts', async () => {
    const { sup, changes } = await setup({ baseMs: 200 })
    const inst = makeInstance({ spec: { ...nodeScript('process.exit(3)'), restartPolicy: 'always' } })
    sup.apply([inst])
    await waitFor('3 restarts', () => (sup.report(inst.instanceId)?.restarts ?? 0) >= 3, 10_000)
    const starts = changes.filter((c) => c.instanceId === inst.instanceId && c.state === 'running').map((c) => c.at)
    expect(starts.length).toBeGreaterThanOrEqual(4)
    const gaps = starts.slice(1, 4).map((t, i) => t - starts[i]!)
    // Delays 200, 400, 800ms (plus the process's own run time).
    expect(gaps[0]).toBeGreaterThanOrEqual(190)
    expect(gaps[1]).toBeGreaterThanOrEqual(390)
    expect(gaps[2]).toBeGreaterThanOrEqual(790)
    // The delays themselves, as announced: the measured gaps also hold each start's own time,
    // which on a loaded machine varies by more than a doubling.
    const announced = changes.filter((c) => c.instanceId === inst.instanceId).flatMap((c) => /restarting in ([\d.]+)s/.exec(c.message ?? '')?.[1] ?? [])
    expect([...new Set(announced)].slice(0, 3)).toEqual(['0.2', '0.4', '0.8'])
    const exited = changes.find((c) => c.instanceId === inst.instanceId && c.state === 'exited')
    expect(exited).toMatchObject({ exitCode: 3, pid: null })
  })

  it('keeps how the last run ended (lastExit) while the instance runs again, until the next end replaces it', async () => {
    const { dataDir, sup } = await setup({ baseMs: 100 })
    const marker = join(dataDir, 'ran-once')
    // Exits 3 on its first run, then stays up.
    const code = `const fs = require('fs'); if (!fs.existsSync(${JSON.stringify(marker)})) { fs.writeFileSync(${JSON.stringify(marker)}, ''); process.exit(3) } setInterval(() => {}, 1000)`
    const inst = makeInstance({ spec: { ...nodeScript(code), restartPolicy: 'always' } })
    sup.apply([inst])
    const again = await waitFor('running again', () => (running(sup, inst.instanceId)?.restarts === 1 ? running(sup, inst.instanceId) : undefined), 10_000)
    expect(again).toMatchObject({ message: null, exitCode: null, lastExit: { reason: 'exited', exitCode: 3, signal: null, message: 'exited with code 3' } })
    expect(Date.parse(again.lastExit!.at)).toBeLessThanOrEqual(Date.parse(again.startedAt!))
    // What the agent sends passes the server's bounds.
    expect(ZInstanceReport.parse(again)).toEqual(again)
    // Persisted with the state: a restarted agent reports it too.
    const state = JSON.parse(await readFile(join(instanceDir(dataDir, inst.instanceId), 'state.json'), 'utf8'))
    expect(state.lastExit).toEqual(again.lastExit)
    // The next end replaces it: here the agent stopping it.
    sup.apply([{ ...inst, desiredState: 'stopped' }])
    const stopped = await waitFor('stopped', () => (sup.report(inst.instanceId)?.state === 'stopped' ? sup.report(inst.instanceId) : undefined))
    expect(stopped.lastExit).toMatchObject({ reason: 'stopped', signal: 'SIGTERM', message: expect.stringMatching(/^stopped \(desired state is stopped\)/) })
  })

  it('resets the backoff after a healthy run', async () => {
    const { sup, changes } = await setup({ baseMs: 200, resetAfterMs: 200 })
    const inst = makeInstance({ spec: { ...nodeScript('setTimeout(() => process.exit(1), 300)'), restartPolicy: 'on_failure' } })
    sup.apply([inst])
    await waitFor('3 restarts', () => (sup.report(inst.instanceId)?.restarts ?? 0) >= 3, 10_000)
    const delays = changes.filter((c) => c.message?.includes('restarting in')).map((c) => c.message!.match(/restarting in ([\d.]+)s/)![1])
    // Each run lasted longer than resetAfterMs, so every delay starts over at baseMs instead of doubling.
    expect(delays.slice(0, 3)).toEqual(['0.2', '0.2', '0.2'])
  })

  it('leaves a process exited under the never policy, and on_failure after a clean exit', async () => {
    const { sup } = await setup({ baseMs: 100 })
    const never = makeInstance({ spec: { ...nodeScript('process.exit(4)'), restartPolicy: 'never' } })
    const clean = makeInstance({ spec: { ...nodeScript('process.exit(0)'), restartPolicy: 'on_failure' } })
    sup.apply([never, clean])
    await waitFor('both exited', () => sup.report(never.instanceId)?.state === 'exited' && sup.report(clean.instanceId)?.state === 'exited')
    // The exit has been handled: a restart would have been scheduled (and announced) by now.
    await sup.settled()
    expect(sup.report(never.instanceId)).toMatchObject({ state: 'exited', exitCode: 4, restarts: 0, pid: null })
    expect(sup.report(clean.instanceId)).toMatchObject({ state: 'exited', exitCode: 0, restarts: 0 })
    for (const i of [never, clean]) expect(sup.report(i.instanceId)?.message ?? '').not.toMatch(/restarting/)
    // Re-sending the same desired state does not revive them.
    sup.apply([never, clean])
    await sup.settled()
    expect(sup.report(never.instanceId)?.restarts).toBe(0)
  })

  it('SIGKILLs a process group that ignores SIGTERM after the grace period', async () => {
    const { dataDir, sup } = await setup()
    const inst = makeInstance({
      spec: {
        ...nodeScript(`
          process.on('SIGTERM', () => {})
          const child = require('child_process').spawn(process.execPath, ['-e', "process.on('SIGTERM', () => {}); setInterval(() => {}, 1000)"], { stdio: 'ignore' })
          console.log('ready ' + child.pid)
          setInterval(() => {}, 1000)
        `),
        stopGraceSeconds: 1,
      },
    })
    sup.apply([inst])
    const r = await waitFor('running', () => running(sup, inst.instanceId))
    const out = await waitFor('ready', async () => /ready (\d+)/.exec(await readFile(join(instanceDir(dataDir, inst.instanceId), 'stdout.log'), 'utf8')))
    const childPid = Number(out[1])
    expect(isAlive(childPid)).toBe(true)

    const t0 = Date.now()
    sup.apply([{ ...inst, desiredState: 'stopped', generation: 2 }])
    await waitFor('stopping', () => sup.report(inst.instanceId)?.state === 'stopping')
    await waitFor('stopped', () => sup.report(inst.instanceId)?.state === 'stopped', 5000)
    const took = Date.now() - t0
    expect(took).toBeGreaterThanOrEqual(950)
    // Killed after the 1 s grace, not after some longer default (a loaded machine adds seconds).
    expect(took).toBeLessThan(4500)
    expect(sup.report(inst.instanceId)).toMatchObject({ state: 'stopped', pid: null, exitCode: 137 })
    expect(isAlive(r.pid!)).toBe(false)
    await waitFor('grandchild gone', () => !isAlive(childPid), 2000)
  })

  it('reports failed with a clear message when the command does not exist', async () => {
    const { sup } = await setup()
    const inst = makeInstance({ spec: { command: 'alveary-no-such-command', args: [], restartPolicy: 'never' } })
    sup.apply([inst])
    const r = await waitFor('failed', () => (sup.report(inst.instanceId)?.state === 'failed' ? sup.report(inst.instanceId) : undefined))
    expect(r.message).toMatch(/command not found: alveary-no-such-command/)
    expect(r.pid).toBeNull()
  })

  it('keeps the process on a generation-only bump and replaces it on a spec change', async () => {
    const { sup } = await setup()
    const inst = makeInstance({ generation: 1 })
    sup.apply([inst])
    const first = await waitFor('running', () => running(sup, inst.instanceId))
    const bumped: TDesiredInstance = { ...inst, generation: 2 }
    expect(sup.apply([bumped]).map((a) => a.type)).toEqual(['leave'])
    await sup.settled()
    expect(sup.report(inst.instanceId)).toMatchObject({ state: 'running', pid: first.pid, generation: 2 })

    const changed: TDesiredInstance = { ...inst, generation: 3, spec: { ...inst.spec, env: { V: '2' } } }
    expect(sup.apply([changed]).map((a) => a.type)).toEqual(['restart'])
    const second = await waitFor('restarted', () => {
      const r = running(sup, inst.instanceId)
      return r && r.pid !== first.pid ? r : undefined
    })
    expect(second).toMatchObject({ generation: 3, restarts: 0 })
    expect(isAlive(first.pid!)).toBe(false)
  })

  it('whenStopped: true once the instance is told to stop and its process is gone (a crash it restarts from does not count), false after the timeout', async () => {
    const { dataDir, sup } = await setup({ baseMs: 100 })
    // Exits once on its own (the restart policy brings it back), then runs.
    const inst = makeInstance({ spec: nodeScript(`if (!require('fs').existsSync(process.env.MARK)) { require('fs').writeFileSync(process.env.MARK, ''); process.exit(3) } setInterval(() => {}, 1000)`) })
    const marked = { ...inst, spec: { ...inst.spec, env: { MARK: join(dataDir, 'crashed') } } }
    expect(await sup.whenStopped(inst.instanceId, 10)).toBe(true) // unknown here: nothing runs
    sup.apply([marked])
    const early = sup.whenStopped(inst.instanceId, 60_000)
    let woke = false
    void early.then(() => (woke = true))
    const r = await waitFor('running after its crash', () => (running(sup, inst.instanceId)?.restarts === 1 ? running(sup, inst.instanceId) : undefined))
    expect(woke).toBe(false)
    expect(await sup.whenStopped(inst.instanceId, 50)).toBe(false)
    sup.apply([{ ...marked, desiredState: 'stopped', generation: 2 }])
    expect(await early).toBe(true)
    expect(sup.report(inst.instanceId)?.state).toBe('stopped')
    expect(isAlive(r.pid!)).toBe(false)
  })
})

