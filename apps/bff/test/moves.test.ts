import { execFileSync } from 'node:child_process'
import { access, mkdir, readFile, truncate, writeFile } from 'node:fs/promises'
import path from 'node:path'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { toolHere } from '../../../packages/agents/test/helpers'
import { createCluster, type TestCluster } from './cluster'
import { addMember, callerFor, OPERATOR, startTestBff, waitFor, freeListenerPort, type TestBff, readyNodes } from './harness'

// Moves between two real agent processes: local volumes copied with rsync, shared volumes
// re-attached, faults at the copy and at the target, and a drain of stateful apps.
const noRsync = toolHere('rsync', 'skipping the moves tests (local volumes move with it)') ? null : 'no rsync'
let bff: TestBff
let cluster: TestCluster
let tenantId: string
type Caller = Awaited<ReturnType<typeof callerFor>>
let op: Caller
let dev: Caller

const counterApp = (name: string, driver: 'local' | 'shared', extra: Record<string, unknown> = {}) => ({
  tenantId,
  name,
  replicas: 1,
  spec: {
    command: 'node',
    args: ['examples/counter/server.js'],
    cpuMillis: 100,
    memoryMb: 64,
    stopGraceSeconds: 5,
    volumes: [{ name: 'data', driver, sizeMb: 64, mountPath: '/data' }],
    ...extra,
  },
})

const nodeId = async (name: string) => (await op.nodes.list()).find((n) => n.name === name)!.id
const instanceOf = async (appId: string) => (await dev.apps.get({ tenantId, appId })).instances.find((i) => i.desiredState === 'running')!
const countAt = async (url: string) => ((await (await fetch(url, { signal: AbortSignal.timeout(2000) })).json()) as { count: number; run: string }).count

/**
 * Requests the instance every 50 ms until stopped. An error answer or a refused/reset
 * connection means it stopped serving; a request still unanswered after 5 s is not counted
 * either way (on a loaded CI machine the answer itself can take seconds).
 */
function probeServing(url: string) {
  const state = { served: 0, refused: [] as string[], stop: () => clearInterval(timer) }
  const timer = setInterval(() => {
    fetch(url, { signal: AbortSignal.timeout(5000) }).then(
      (r) => (r.ok ? state.served++ : state.refused.push(`status ${r.status}`)),
      (err: Error) => {
        if (err.name !== 'TimeoutError') state.refused.push(String((err.cause as Error | undefined)?.message ?? err.message))
      },
    )
  }, 50)
  return state
}

async function deployRunning(app: ReturnType<typeof counterApp>) {
  const { id } = await dev.apps.create(app)
  const inst = await waitFor('the counter running', async () => {
    const i = await instanceOf(id)
    return i?.state === 'running' && i.url ? i : null
  }, 30_000).catch(async (err) => {
    console.error(JSON.stringify((await dev.apps.get({ tenantId, appId: id })).instances, null, 1))
    throw err
  })
  await waitFor('the counter counting', async () => (await countAt(inst.url!)) > 3)
  return { appId: id, inst }
}

async function finished(moveId: string, timeoutMs = 60_000) {
  return waitFor('the move to finish', async () => {
    const m = await op.moves.get({ moveId })
    return m.state === 'succeeded' || m.state === 'failed' ? m : null
  }, timeoutMs, 100).catch(async (err) => {
    const m = await op.moves.get({ moveId })
    console.error(JSON.stringify({ state: m.state, step: m.step, error: m.error, steps: m.steps.map((s) => `${s.name}:${s.state}:${s.detail}:${s.error}`) }, null, 1))
    throw err
  })
}


beforeAll(async () => {
  if (noRsync) return
  const lbPort = await freeListenerPort()
  bff = await startTestBff({ ALVEARY_LB_PORT_MIN: String(lbPort), ALVEARY_LB_PORT_MAX: String(lbPort), ALVEARY_HEARTBEAT_MS: '1000', ALVEARY_NODE_LEASE_MS: '5000', ALVEARY_EVICTION_GRACE_MS: '1000', ALVEARY_SELF_FENCE_MS: '6000', ALVEARY_FENCE_MARGIN_MS: '1000' })
  op = await callerFor(bff, OPERATOR.email, OPERATOR.password)
  const joinToken = (await op.joinTokens.create({ description: 'moves', ttlHours: 1, uses: 5 })).token
  tenantId = (await op.tenants.create({ slug: 'moves', name: 'Moves' })).id
  await addMember(bff, op, tenantId, { email: 'dev@moves.test', name: 'Dev', password: 'dev-password', role: 'owner' })
  dev = await callerFor(bff, 'dev@moves.test', 'dev-password')
  cluster = await createCluster({ server: () => bff.url, joinToken: () => joinToken, names: ['node-a', 'node-b'], labels: { 'node-a': 'zone=a', 'node-b': 'zone=b' } })
  cluster.start('node-a')
  cluster.start('node-b')
  await readyNodes(op, 2)
})
afterAll(async () => {
  await cluster?.stopAll()
  await bff?.stop()
  await bff?.dropDatabase()
})

describe.skipIf(noRsync)('moves', { timeout: 120_000 }, () => {
  it('moves an instance with a local volume: copied with rsync, same data, downtime measured', async () => {
    const { appId, inst } = await deployRunning(counterApp('local-db', 'local'))
    const source = inst.node!.name
    const target = source === 'node-a' ? 'node-b' : 'node-a'
    const before = await countAt(inst.url!)
    const move = await op.moves.start({ instanceId: inst.id, targetNodeId: await nodeId(target) })
    const done = await finished(move.id)
    expect(done.error).toBeNull()
    expect(done.state).toBe('succeeded')
    expect(done.steps.map((s) => `${s.name}:${s.state}`)).toEqual([
      'reserve:done',
      'prepare-target:done',
      'pre-copy:done',
      'stop-source:done',
      'final-copy:done',
      'move-fence:done',
      'start-target:done',
      'wait-ready:done',
      'switch-lb:skipped',
      'release-source:done',
    ])
    expect(done.bytesCopied).toBeGreaterThan(0)
    expect(done.downtimeMs).toBeGreaterThan(0)
    expect(done.downtimeMs).toBeLessThan(30_000)
    // The final copy went out with the stop (its agent held it until the instance was gone): one final send.
    const db = new pg.Client({ connectionString: bff.databaseUrl })
    await db.connect()
    try {
      const { rows } = await db.query<{ payload: { afterStopOf?: string } }>(`SELECT payload FROM "AgentCommand" WHERE kind = 'send-volumes' AND payload->>'final' = 'true' AND payload::text LIKE $1`, [`%${inst.volumes[0]!.id}%`])
      expect(rows.map((r) => r.payload.afterStopOf)).toEqual([inst.id])
    } finally {
      await db.end()
    }
    const after = await waitFor('running on the target', async () => {
      const i = await instanceOf(appId)
      return i.node?.name === target && i.state === 'running' ? i : null
    })
    expect(after.id).toBe(inst.id)
    expect(after.moving).toBeNull()
    expect(after.volumes[0]!.epoch).toBe(inst.volumes[0]!.epoch + 1)
    // The count continued from where the source stopped: nothing acknowledged was lost.
    expect(await waitFor('serving at the target', () => countAt(after.url!).catch(() => 0))).toBeGreaterThanOrEqual(before)
    // The source's copy is gone (release-source discarded it).
    const sourceCopy = path.join(cluster.dataDir(source), 'volumes', inst.volumes[0]!.id)
    await expect(readFile(path.join(sourceCopy, 'data', 'count'))).rejects.toThrow()
  })

  it('moves an instance with a shared volume by re-attaching it: nothing copied', async () => {
    const { appId, inst } = await deployRunning(counterApp('shared-db', 'shared'))
    const target = inst.node!.name === 'node-a' ? 'node-b' : 'node-a'
    const before = await countAt(inst.url!)
    const move = await op.moves.start({ instanceId: inst.id, targetNodeId: null })
    const done = await finished(move.id)
    expect(done.state).toBe('succeeded')
    expect(done.target?.name).toBe(target)
    expect(done.steps.find((s) => s.name === 'pre-copy')!.state).toBe('skipped')
    expect(done.bytesCopied).toBe(0)
    const after = await instanceOf(appId)
    expect(after.node?.name).toBe(target)
    expect(await waitFor('serving at the target', () => countAt(after.url!).catch(() => 0))).toBeGreaterThanOrEqual(before)
  })

  it('switches the load balancer in front of the app to the moved instance', async () => {
    const { appId, inst } = await deployRunning(
      counterApp('behind-lb', 'local', { ports: [{ name: 'http', readiness: { type: 'http', path: '/healthz', intervalSeconds: 1, timeoutSeconds: 1 } }] }),
    )
    await op.loadBalancers.setNode({ nodeId: await nodeId('node-a'), enabled: true })
    const lb = await dev.loadBalancers.create({ tenantId, name: 'front', drainSeconds: 1, listeners: [{ protocol: 'http', rules: [{ targets: [{ appId, port: 'http' }] }] }] })
    const active = await waitFor('the load balancer active', async () => {
      const l = await dev.loadBalancers.get({ tenantId, lbId: lb.id })
      return l.state === 'active' && l
    }, 30_000)
    const url = active.addresses[0]!.url
    const viaLb = async () => (await (await fetch(url, { signal: AbortSignal.timeout(2000) })).json()) as { count: number; instance: string; run: string }
    const before = await waitFor('the counter behind the load balancer', async () => {
      const r = await viaLb().catch(() => null)
      return r && r.instance === inst.id && r.count > 0 ? r : null
    }, 30_000)
    const target = inst.node!.name === 'node-a' ? 'node-b' : 'node-a'
    const move = await op.moves.start({ instanceId: inst.id, targetNodeId: await nodeId(target) })
    const done = await finished(move.id)
    expect(done.error).toBeNull()
    const step = done.steps.find((s) => s.name === 'switch-lb')!
    expect(step.state).toBe('done')
    expect(step.detail).toMatch(/^1 load-balancing node send/)
    // The same address serves the moved instance (a new run of it), its count where it was or further.
    const after = await waitFor('the load balancer serving the moved instance', async () => {
      const r = await viaLb().catch(() => null)
      return r && r.instance === inst.id && r.run !== before.run ? r : null
    }, 30_000)
    expect(after.count).toBeGreaterThanOrEqual(before.count)
    expect((await instanceOf(appId)).node?.name).toBe(target)
    // Its capacity is free again for the tests after this one.
    await dev.loadBalancers.delete({ tenantId, lbId: lb.id })
    await op.loadBalancers.setNode({ nodeId: await nodeId('node-a'), enabled: false })
    await dev.apps.delete({ tenantId, appId })
    await waitFor('the app gone', async () => !(await dev.apps.list({ tenantId })).some((a) => a.id === appId), 30_000)
  })

  it('a target that cannot hold the volume: the move fails and the instance keeps serving at the source, untouched', async () => {
    const { appId, inst } = await deployRunning(counterApp('broken-copy', 'local'))
    const target = inst.node!.name === 'node-a' ? 'node-b' : 'node-a'
    // The target cannot hold the copy: a file where the volume's folder must go.
    await mkdir(path.join(cluster.dataDir(target), 'volumes'), { recursive: true })
    await writeFile(path.join(cluster.dataDir(target), 'volumes', inst.volumes[0]!.id), 'in the way')
    const serving = probeServing(inst.url!)
    const move = await op.moves.start({ instanceId: inst.id, targetNodeId: await nodeId(target) })
    const done = await finished(move.id).finally(serving.stop)
    expect(done.state).toBe('failed')
    expect(done.error).toMatch(/^(prepare-target|pre-copy):/)
    expect(done.steps.filter((s) => s.state === 'compensated').map((s) => s.name)).toContain('reserve')
    const still = await instanceOf(appId)
    expect(still.node?.name).toBe(inst.node!.name)
    expect(still.volumes[0]!.epoch).toBe(inst.volumes[0]!.epoch)
    expect(still.state).toBe('running')
    expect(serving.served).toBeGreaterThan(0)
    expect(serving.refused).toEqual([])
  })

  it('a copy cut off mid-transfer (the sending rsync killed) leaves the instance serving at the source; the partial copy goes', async () => {
    const { appId, inst } = await deployRunning(counterApp('cut-copy', 'local'))
    const source = inst.node!.name
    const target = source === 'node-a' ? 'node-b' : 'node-a'
    // 1 GiB of ballast (sparse here, written out on the target): a pre-copy that takes seconds.
    const ballast = path.join(cluster.dataDir(source), 'volumes', inst.volumes[0]!.id, 'data', 'ballast')
    await writeFile(ballast, '')
    await truncate(ballast, 1024 * 1024 * 1024)
    const serving = probeServing(inst.url!)
    const move = await op.moves.start({ instanceId: inst.id, targetNodeId: await nodeId(target) })
    // The sender's rsync client, found by the volume's module in its command line (pgrep: a scan of /proc in
    // JavaScript was slow enough on a busy machine to miss a short copy).
    const sender = async () => {
      try {
        return Number(execFileSync('pgrep', ['-f', `^rsync .*rsync://.*/v-${inst.volumes[0]!.id}/`]).toString().split('\n')[0])
      } catch {
        return null
      }
    }
    const pid = await waitFor('the pre-copy under way', sender, 60_000, 10).catch(async (err) => {
      const m = await op.moves.get({ moveId: move.id })
      throw new Error(`${(err as Error).message}; move: ${JSON.stringify({ state: m.state, step: m.step, error: m.error })}`)
    })
    process.kill(pid, 'SIGKILL')
    const done = await finished(move.id).finally(serving.stop)
    expect(done.state).toBe('failed')
    expect(done.error).toMatch(/^pre-copy: copy from node-. to node-. failed: rsync exited/)
    expect(done.steps.find((s) => s.name === 'stop-source')!.state).toBe('pending')
    const still = await instanceOf(appId)
    expect(still.node?.name).toBe(source)
    expect(still.state).toBe('running')
    expect(still.volumes[0]!.epoch).toBe(inst.volumes[0]!.epoch)
    expect(serving.served).toBeGreaterThan(0)
    expect(serving.refused).toEqual([])
    // prepare-target's compensation deleted what had arrived on the target.
    await expect(access(path.join(cluster.dataDir(target), 'volumes', inst.volumes[0]!.id))).rejects.toThrow()
    await dev.apps.delete({ tenantId, appId })
    await waitFor('the app gone', async () => !(await dev.apps.list({ tenantId })).some((a) => a.id === appId), 30_000)
  })

  it('a target agent killed during the move: the move fails and the instance runs at the source', async () => {
    const { appId, inst } = await deployRunning(counterApp('lost-target', 'local', { env: { SHUTDOWN_DELAY_MS: '1500' } }))
    const target = inst.node!.name === 'node-a' ? 'node-b' : 'node-a'
    const before = await countAt(inst.url!)
    const move = await op.moves.start({ instanceId: inst.id, targetNodeId: await nodeId(target) })
    // Once the source is told to stop (the app takes 1.5 s to flush), the target goes away.
    await waitFor('the source stopping', async () => (await op.moves.get({ moveId: move.id })).step === 'stop-source', 30_000, 50)
    await cluster.kill(target)
    const done = await finished(move.id)
    expect(done.state).toBe('failed')
    const back = await waitFor('running at the source again', async () => {
      const i = await instanceOf(appId)
      return i.node?.name === inst.node!.name && i.state === 'running' ? i : null
    }, 30_000)
    expect(await waitFor('serving', () => countAt(back.url!).catch(() => 0))).toBeGreaterThanOrEqual(before)
    cluster.start(target)
    await waitFor('the target back', async () => (await op.nodes.list()).filter((n) => n.state === 'ready').length === 2, 30_000)
  })

  it('a volume outlives its instance: scaled down and up again, the ordinal gets its volume back with its data', async () => {
    const { appId } = await deployRunning({ ...counterApp('scaled', 'local'), replicas: 2 })
    const running = async () => (await dev.apps.get({ tenantId, appId })).instances.filter((i) => i.desiredState === 'running' && i.state === 'running' && i.url)
    const second = await waitFor('both running', async () => (await running()).find((i) => i.ordinal === 1), 30_000)
    await waitFor('the second counting', async () => (await countAt(second.url!)) > 3)
    const volume = second.volumes[0]!
    await dev.apps.scale({ tenantId, appId, replicas: 1 })
    await waitFor('scaled down', async () => !(await dev.apps.get({ tenantId, appId })).instances.some((i) => i.id === second.id && i.state === 'running'), 30_000)
    // Its instance is gone; its data stays where it was.
    const file = path.join(cluster.dataDir(second.node!.name), 'volumes', volume.id, 'data', 'count')
    const kept = Number(await readFile(file, 'utf8'))
    expect(kept).toBeGreaterThan(3)
    await dev.apps.scale({ tenantId, appId, replicas: 2 })
    const back = await waitFor('the second ordinal running again', async () => (await running()).find((i) => i.ordinal === 1), 30_000)
    expect(back.volumes[0]!.id).toBe(volume.id)
    expect(back.node!.name).toBe(second.node!.name)
    expect(await waitFor('serving', () => countAt(back.url!).catch(() => 0))).toBeGreaterThanOrEqual(kept)
    // Deleted with the app: the data goes from the node.
    await dev.apps.delete({ tenantId, appId })
    await waitFor('the volume deleted with the app', () => access(path.dirname(file)).then(() => false, () => true), 60_000)
  })

  it('preemption: a higher-priority instance evicts a lower-priority one with a volume, which moves instead of stopping', async () => {
    // node-a (2000m) holds a low-priority stateful instance of 1500m; a high-priority one of 1000m must run on node-a.
    await op.nodes.cordon({ nodeId: await nodeId('node-b') })
    const low = await deployRunning(counterApp('low-db', 'local', { cpuMillis: 1500, priorityClass: 'low' }))
    await op.nodes.uncordon({ nodeId: await nodeId('node-b') })
    expect(low.inst.node?.name).toBe('node-a')
    const before = await countAt(low.inst.url!)
    const { id: highId } = await dev.apps.create({
      tenantId,
      name: 'high',
      replicas: 1,
      spec: { command: 'node', args: ['examples/hello/server.js'], cpuMillis: 1000, memoryMb: 32, priorityClass: 'high', nodeSelector: { zone: 'a' } },
    })
    const moved = await waitFor('the low-priority instance moved off node-a', async () => {
      const m = (await op.moves.list({ limit: 50 })).find((x) => x.instance.id === low.inst.id && x.reason === 'preemption')
      return m && (m.state === 'succeeded' || m.state === 'failed') ? m : null
    }, 60_000)
    expect(moved.error).toBeNull()
    expect(moved.target?.name).toBe('node-b')
    const high = await waitFor('the high-priority instance running on node-a', async () => {
      const i = await instanceOf(highId)
      return i?.node?.name === 'node-a' && i.state === 'running' ? i : null
    }, 60_000)
    expect(high).toBeTruthy()
    const lowNow = await instanceOf(low.appId)
    expect(lowNow.id).toBe(low.inst.id)
    expect(await waitFor('the moved one serving', () => countAt(lowNow.url!).catch(() => 0))).toBeGreaterThanOrEqual(before)
    // 2.5 cores of the 4 the nodes have: free them for the drain after this.
    for (const id of [highId, low.appId]) await dev.apps.delete({ tenantId, appId: id })
    await waitFor('the apps gone', async () => !(await dev.apps.list({ tenantId })).some((a) => a.id === highId || a.id === low.appId), 30_000)
  })

  it('drains a node with stateful apps: they move with their data, one at a time', async () => {
    const { appId } = await deployRunning({ ...counterApp('drained', 'local', { spread: 'none', maxUnavailable: 1 }), replicas: 2 })
    // deployRunning waited for one replica; the other may still be starting (ECONNREFUSED at load).
    const rows = await waitFor('both replicas running', async () => {
      const is = (await dev.apps.get({ tenantId, appId })).instances
      return is.length === 2 && is.every((i) => i.state === 'running' && i.url) ? is : null
    }, 30_000)
    const counting = (url: string) => waitFor('counting', async () => (await countAt(url).catch(() => 0)) || null, 30_000)
    const counts = new Map(await Promise.all(rows.map(async (i) => [i.id, await counting(i.url!)] as const)))
    const drained = rows[0]!.node!.name
    await op.nodes.drain({ nodeId: await nodeId(drained) })
    let concurrent = 0
    await waitFor('everything off the drained node', async () => {
      const moves = (await op.moves.list({ limit: 50 })).filter((m) => m.app.id === appId && (m.state === 'running' || m.state === 'compensating'))
      concurrent = Math.max(concurrent, moves.length)
      const d = await dev.apps.get({ tenantId, appId })
      return d.instances.every((i) => i.node?.name !== drained && i.state === 'running')
    }, 90_000, 100).catch(async (err) => {
      const d = await dev.apps.get({ tenantId, appId })
      const ms = (await op.moves.list({ limit: 50 })).filter((m) => m.app.id === appId)
      console.error(JSON.stringify({ instances: d.instances.map((i) => [i.node?.name, i.state, i.pendingReason, i.message]), moves: ms.map((m) => [m.state, m.step, m.error]) }, null, 1))
      throw err
    })
    expect(concurrent).toBeLessThanOrEqual(1)
    const moves = await waitFor('the moves finished', async () => {
      const ms = (await op.moves.list({ limit: 50 })).filter((m) => m.app.id === appId)
      return ms.every((m) => m.state === 'succeeded' || m.state === 'failed') ? ms : null
    })
    expect(moves.length).toBeGreaterThan(0)
    expect(moves.every((m) => m.reason === 'drain' && m.state === 'succeeded')).toBe(true)
    for (const i of (await dev.apps.get({ tenantId, appId })).instances) {
      // Same instances, data kept: each count continues.
      expect(await waitFor('serving', () => countAt(i.url!).catch(() => 0))).toBeGreaterThanOrEqual(counts.get(i.id)!)
    }
    await op.nodes.uncordon({ nodeId: await nodeId(drained) })
  })
})
