import { describe, expect, it } from 'vitest'
import type { AgentCommands, CommandState } from '../agents/commands'
import { createManualClock } from '../clock'
import type { TAgentCommand } from '../protocol'
import { advanceMove, type SagaStore, type StepRow } from './saga'
import { createMoveSteps, STEP_NAMES } from './steps'
import type { MoveNode, MoveRecord, MoveWorld, MovingInstance, Observed } from './types'

const ids = { inst: '00000000-0000-4000-8000-000000000001', a: '00000000-0000-4000-8000-0000000000aa', b: '00000000-0000-4000-8000-0000000000bb', vol: '00000000-0000-4000-8000-0000000000cc' }
const CONFIG = { selfFenceMs: 10_000, fenceMarginMs: 2_000, nodeLeaseMs: 3_000 }

/** An in-memory world: one instance with one volume on node a, node b free; agents answer as scripted. */
function setup(opts: { driver?: 'local' | 'shared'; sourceLost?: boolean; lbApplied?: () => boolean; copyAfterStop?: boolean } = {}) {
  const clock = createManualClock()
  const inst: MovingInstance = {
    id: ids.inst,
    tenantId: ids.inst,
    appId: ids.inst,
    appName: 'db',
    ordinal: 0,
    nodeId: ids.a,
    desiredState: 'running',
    paused: false,
    driver: 'process',
    image: null,
    volumes: [{ id: ids.vol, name: 'data', driver: opts.driver ?? 'local', epoch: 3, nodeId: ids.a }],
    networked: false,
  }
  const cap = { drivers: ['local', 'shared'] as ('local' | 'shared')[], copy: 'rsync' as const, selfFence: true, checkpoint: { ok: false }, ...(opts.copyAfterStop && { copyAfterStop: true }) }
  const nodes: Record<string, MoveNode> = {
    [ids.a]: { id: ids.a, name: 'node-a', address: '10.0.0.1', connected: !opts.sourceLost, lastHeartbeatAt: clock.now(), volume: cap },
    [ids.b]: { id: ids.b, name: 'node-b', address: '10.0.0.2', connected: true, lastHeartbeatAt: clock.now(), volume: cap },
  }
  let observed: Observed | null = { nodeId: ids.a, state: 'running', ready: null, message: null, at: clock.now() }
  const reservations = new Set<string>()
  const recorded: Record<string, unknown> = {}
  let copiedBytes = 0
  const world: MoveWorld = {
    instance: async () => structuredClone(inst),
    node: async (id) => nodes[id] ?? null,
    observed: async () => observed,
    async reserve() {
      reservations.add(ids.b)
      return { nodeId: ids.b }
    },
    unreserve: async (_m, n) => void reservations.delete(n),
    async setPaused(_id, paused) {
      inst.paused = paused
    },
    async switchPlacement(_m, from, to) {
      if (inst.nodeId === to) return
      inst.nodeId = to
      inst.paused = false
      inst.volumes = inst.volumes.map((v) => ({ ...v, epoch: v.epoch + 1, nodeId: to }))
      reservations.delete(to)
      reservations.add(from)
    },
    // With lbApplied: one load-balancing node in front of the app, which has applied the switch when it says so.
    switchLoadBalancers: async () => (opts.lbApplied ? { [ids.a]: 7 } : null),
    loadBalancersApplied: async () => ({ total: opts.lbApplied ? 1 : 0, applied: opts.lbApplied?.() ? 1 : 0 }),
    async record(_id, patch) {
      if (patch.copied) copiedBytes += patch.copied.bytes
      Object.assign(recorded, patch)
    },
  }
  /** Every command issued, and how the fake agent answers each kind (default: at once, ok). */
  const issued: { nodeId: string; cmd: TAgentCommand }[] = []
  const answers = new Map<string, CommandState>()
  const script: Partial<Record<TAgentCommand['kind'], (cmd: TAgentCommand) => CommandState>> = {}
  const agents: AgentCommands = {
    async run(id, nodeId, cmd) {
      if (!answers.has(id)) {
        issued.push({ nodeId, cmd })
        answers.set(id, script[cmd.kind]?.(cmd) ?? { state: 'done', result: cmd.kind === 'receive-volumes' ? { port: 40000 } : cmd.kind === 'send-volumes' ? { bytes: cmd.final ? 100 : 5000, ms: 10 } : {} })
      }
      return answers.get(id)!
    },
  }
  const move: MoveRecord = { id: 'm1', tenantId: ids.inst, appId: ids.inst, instanceId: ids.inst, reason: 'manual', sourceNodeId: ids.a, targetNodeId: null }
  const steps = createMoveSteps({ world, agents, clock, config: CONFIG })
  const rows: StepRow[] = STEP_NAMES.map((name, index) => ({ index, name, state: 'pending', attempts: 0, data: {}, startedAt: null }))
  const sagaState = { state: 'running' as 'running' | 'compensating' | 'succeeded' | 'failed', error: null as string | null }
  const store: SagaStore<MoveRecord> = {
    load: async () => ({ id: 'm1', state: sagaState.state, steps: structuredClone(rows), record: move }),
    async updateStep(_id, index, patch) {
      Object.assign(rows[index]!, Object.fromEntries(Object.entries(patch).filter(([k]) => k in rows[index]!)))
    },
    async updateMove(_id, patch) {
      if (patch.state) sagaState.state = patch.state
      if (patch.error !== undefined) sagaState.error = patch.error
    },
  }
  const advance = () => advanceMove('m1', { store, steps, clock })
  const stateOf = (name: string) => rows.find((r) => r.name === name)!.state
  return {
    clock,
    inst,
    nodes,
    reservations,
    recorded,
    issued,
    answers,
    script,
    rows,
    sagaState,
    advance,
    stateOf,
    copied: () => copiedBytes,
    setObserved: (o: Partial<Observed> | null) => (observed = o && { nodeId: ids.a, state: 'running', ready: null, message: null, at: clock.now(), ...o }),
  }
}

/** Runs the saga as the controller would, playing the agents' part (the source stops, the target starts). */
async function drive(t: ReturnType<typeof setup>, until: () => boolean = () => false) {
  for (let i = 0; i < 50; i++) {
    const res = await t.advance()
    if (res !== 'waiting' || until()) return res
    if (t.inst.paused && t.inst.nodeId === ids.a) t.setObserved({ nodeId: ids.a, state: 'stopped' })
    else if (t.inst.paused && t.inst.nodeId === ids.b) t.setObserved({ nodeId: ids.b, state: 'stopped' })
    else if (t.inst.nodeId === ids.b) t.setObserved({ nodeId: ids.b, state: 'running' })
    else t.setObserved({ nodeId: ids.a, state: 'running' })
    await t.clock.advance(100)
  }
  throw new Error('the move did not finish')
}

describe('move steps', () => {
  it('moves an instance with a local volume: pre-copy while serving, stop, delta, fence, start', async () => {
    const t = setup()
    expect(await drive(t)).toBe('succeeded')
    expect(t.issued.map((c) => `${c.cmd.kind}@${c.nodeId === ids.a ? 'a' : 'b'}${c.cmd.kind === 'send-volumes' ? (c.cmd.final ? ':final' : ':pre') : ''}`)).toEqual([
      'prepare-instance@b',
      'receive-volumes@b',
      'send-volumes@a:pre',
      'send-volumes@a:final',
      'discard-volumes@a',
    ])
    expect(t.inst.nodeId).toBe(ids.b)
    expect(t.inst.volumes[0]!.epoch).toBe(4)
    expect(t.reservations.size).toBe(0)
    expect(t.copied()).toBe(5100)
    expect(t.recorded.lastReadyAt).toBeInstanceOf(Date)
    expect(t.recorded.firstReadyAt).toBeInstanceOf(Date)
    expect(t.stateOf('switch-lb')).toBe('skipped')
  })

  it('an agent that can hold a send gets the final copy with the stop, and final-copy waits for that one command', async () => {
    const t = setup({ copyAfterStop: true })
    t.setObserved({ nodeId: ids.a, state: 'running' })
    for (let i = 0; i < 6 && t.stateOf('stop-source') !== 'running'; i++) await t.advance()
    // Issued while the source still runs: the agent holds it until the instance is stopped there.
    expect(t.stateOf('stop-source')).toBe('running')
    expect(t.inst.paused).toBe(true)
    const held = t.issued.at(-1)!
    expect(held).toMatchObject({ nodeId: ids.a, cmd: { kind: 'send-volumes', final: true, afterStopOf: ids.inst, to: { address: '10.0.0.2', port: 40000 } } })
    expect(await drive(t)).toBe('succeeded')
    expect(t.issued.filter((c) => c.cmd.kind === 'send-volumes').map((c) => (c.cmd.kind === 'send-volumes' && c.cmd.final ? 'final' : 'pre'))).toEqual(['pre', 'final'])
    expect(t.rows.find((r) => r.name === 'final-copy')!.data.send).toBe(t.rows.find((r) => r.name === 'stop-source')!.data.finalSend)
    expect(t.copied()).toBe(5100)
    expect(t.inst.volumes[0]!.epoch).toBe(4)
  })

  it('a final copy held for the stop that fails (the instance did not stop there): the instance serves at the source again', async () => {
    const t = setup({ copyAfterStop: true })
    t.script['send-volumes'] = (c) => (c.kind === 'send-volumes' && c.afterStopOf ? { state: 'failed', error: 'the instance did not stop here' } : { state: 'done', result: { bytes: 1, ms: 1 } })
    expect(await drive(t)).toBe('failed')
    expect(t.sagaState.error).toMatch(/^final-copy: copy from node-a to node-b failed: the instance did not stop here/)
    expect(t.inst.nodeId).toBe(ids.a)
    expect(t.inst.paused).toBe(false)
    expect(t.inst.volumes[0]!.epoch).toBe(3)
    expect(t.issued.some((c) => c.cmd.kind === 'discard-volumes' && c.nodeId === ids.b)).toBe(true)
  })

  it('moves a shared volume by re-attaching it: no copy', async () => {
    const t = setup({ driver: 'shared' })
    expect(await drive(t)).toBe('succeeded')
    expect(t.issued.map((c) => c.cmd.kind)).toEqual(['prepare-instance'])
    expect(t.stateOf('pre-copy')).toBe('skipped')
    expect(t.stateOf('final-copy')).toBe('skipped')
    expect(t.inst.volumes[0]!.epoch).toBe(4)
  })

  it('a lost source with a shared volume: waits until the node has certainly fenced itself', async () => {
    const t = setup({ driver: 'shared', sourceLost: true })
    t.setObserved({ nodeId: ids.a, state: 'running' })
    // Run up to stop-source: the source never reports (it is lost).
    for (let i = 0; i < 5; i++) await t.advance()
    expect(t.stateOf('stop-source')).toBe('running')
    expect(t.rows.find((r) => r.name === 'stop-source')!.data.pausedAt).toBeTruthy()
    await t.clock.advance(CONFIG.selfFenceMs + CONFIG.fenceMarginMs - 1000)
    await t.advance()
    expect(t.stateOf('stop-source')).toBe('running')
    expect(t.inst.nodeId).toBe(ids.a)
    await t.clock.advance(1000)
    await t.advance()
    expect(t.stateOf('stop-source')).toBe('done')
    t.setObserved({ nodeId: ids.b, state: 'running' })
    expect(await drive(t)).toBe('succeeded')
    expect(t.inst.nodeId).toBe(ids.b)
  })

  const failures: [string, (t: ReturnType<typeof setup>) => void][] = [
    ['reserve', () => {}],
    ['prepare-target', (t) => (t.script['prepare-instance'] = () => ({ state: 'failed', error: 'image not found' }))],
    ['pre-copy', (t) => (t.script['send-volumes'] = (c) => (c.kind === 'send-volumes' && !c.final ? { state: 'failed', error: 'rsync: connection reset' } : { state: 'done', result: { bytes: 1, ms: 1 } }))],
    ['final-copy', (t) => (t.script['send-volumes'] = (c) => (c.kind === 'send-volumes' && c.final ? { state: 'failed', error: 'rsync: disk full' } : { state: 'done', result: { bytes: 1, ms: 1 } }))],
  ]
  for (const [step, inject] of failures) {
    it(`a failure in ${step} leaves the instance running at the source`, async () => {
      const t = setup()
      if (step === 'reserve') t.inst.desiredState = 'stopped'
      inject(t)
      expect(await drive(t)).toBe('failed')
      expect(t.sagaState.error).toMatch(new RegExp(`^${step}:`))
      expect(t.inst.nodeId).toBe(ids.a)
      expect(t.inst.paused).toBe(false)
      expect(t.inst.volumes[0]!.epoch).toBe(3)
      expect(t.reservations.size).toBe(0)
      if (step !== 'reserve') expect(t.issued.some((c) => c.cmd.kind === 'discard-volumes' && c.nodeId === ids.b)).toBe(true)
    })
  }

  /** Runs the saga with the clock jumping `stepMs` per call (timeouts), nodes heartbeating, agents as `play` says. */
  async function driveSlow(t: ReturnType<typeof setup>, play: (t: ReturnType<typeof setup>) => void, stepMs = 20_000) {
    for (let i = 0; i < 200; i++) {
      const res = await t.advance()
      if (res !== 'waiting') return res
      play(t)
      await t.clock.advance(stepMs)
      for (const n of Object.values(t.nodes)) n.lastHeartbeatAt = t.clock.now()
    }
    throw new Error('the move did not finish')
  }
  /** The agents' usual part: the paused copy stops, the placed one runs (ready as `ready` says on the target). */
  const usual = (ready: boolean | null) => (t: ReturnType<typeof setup>) => {
    if (t.inst.paused) t.setObserved({ nodeId: t.inst.nodeId!, state: 'stopped' })
    else t.setObserved({ nodeId: t.inst.nodeId!, state: 'running', ready: t.inst.nodeId === ids.b ? ready : null })
  }
  const backAtSource = (t: ReturnType<typeof setup>, epoch: number) => {
    expect(t.inst.nodeId).toBe(ids.a)
    expect(t.inst.paused).toBe(false)
    expect(t.inst.volumes[0]!.epoch).toBe(epoch)
    expect(t.reservations.size).toBe(0)
  }

  it('a source that never stops: stop-source times out and the instance serves at the source again', async () => {
    const t = setup()
    expect(await driveSlow(t, (x) => x.setObserved({ nodeId: ids.a, state: 'running' }))).toBe('failed')
    expect(t.sagaState.error).toMatch(/^stop-source: stop-source did not finish within 600s/)
    backAtSource(t, 3)
  })

  it('a target that never gets ready: wait-ready times out, the target stops, its writes are copied back, the fence goes back', async () => {
    const t = setup()
    expect(await driveSlow(t, usual(false))).toBe('failed')
    expect(t.sagaState.error).toMatch(/^wait-ready: wait-ready did not finish within 180s/)
    backAtSource(t, 5)
    expect(t.issued.filter((c) => c.cmd.kind === 'send-volumes' && c.nodeId === ids.b)).toHaveLength(1)
    expect(t.rows.filter((r) => r.state === 'compensated').map((r) => r.name)).toEqual(['reserve', 'prepare-target', 'pre-copy', 'stop-source', 'final-copy', 'move-fence', 'start-target', 'wait-ready'])
  })

  it('a load balancer that never takes the new backend: switch-lb times out and everything goes back to the source', async () => {
    const t = setup({ lbApplied: () => false })
    expect(await driveSlow(t, usual(true))).toBe('failed')
    expect(t.sagaState.error).toMatch(/^switch-lb: switch-lb did not finish within 120s \(0 of 1 load-balancing node switched\)/)
    backAtSource(t, 5)
  })

  it('a load balancer that takes the new backend after a while: switch-lb waits for it', async () => {
    let applied = false
    const t = setup({ lbApplied: () => applied })
    const res = await drive(t, () => t.stateOf('switch-lb') === 'running')
    expect(res).toBe('waiting')
    applied = true
    expect(await drive(t)).toBe('succeeded')
    expect(t.rows.find((r) => r.name === 'switch-lb')!.state).toBe('done')
  })

  it('a target that does not start: the fence goes back, its writes are copied back, the source runs again', async () => {
    const t = setup()
    let res = 'waiting'
    for (let i = 0; i < 50 && res === 'waiting'; i++) {
      res = await t.advance()
      if (t.inst.paused && t.inst.nodeId === ids.a) t.setObserved({ nodeId: ids.a, state: 'stopped' })
      else if (t.inst.nodeId === ids.b) t.setObserved({ nodeId: ids.b, state: t.inst.paused ? 'stopped' : 'failed', message: 'exited with code 1' })
      else t.setObserved({ nodeId: ids.a, state: 'running' })
      await t.clock.advance(100)
    }
    expect(res).toBe('failed')
    expect(t.sagaState.error).toMatch(/^start-target: it did not start on node-b/)
    expect(t.inst.nodeId).toBe(ids.a)
    expect(t.inst.paused).toBe(false)
    expect(t.inst.volumes[0]!.epoch).toBe(5)
    const back = t.issued.filter((c) => c.cmd.kind === 'send-volumes' && c.nodeId === ids.b)
    expect(back).toHaveLength(1)
    expect(t.reservations.size).toBe(0)
  })

  it('a target node that goes away during the copy fails the move without waiting for the timeout', async () => {
    const t = setup()
    t.script['send-volumes'] = () => ({ state: 'pending', progress: null })
    for (let i = 0; i < 4; i++) await t.advance()
    expect(t.stateOf('pre-copy')).toBe('running')
    t.nodes[ids.b] = { ...t.nodes[ids.b]!, connected: false, lastHeartbeatAt: t.clock.now() }
    await t.clock.advance(CONFIG.nodeLeaseMs + 1)
    t.script['discard-volumes'] = () => ({ state: 'failed', error: 'not connected' })
    t.script['close-receive'] = () => ({ state: 'failed', error: 'not connected' })
    t.script['send-volumes'] = undefined
    // The source's send is still pending; the target does not answer: the copy session is dead.
    expect(await drive(t)).toBe('failed')
    expect(t.inst.nodeId).toBe(ids.a)
    expect(t.inst.paused).toBe(false)
  })

  it('resumes where it stopped: a second runner (a new leader) continues from the persisted rows', async () => {
    const t = setup()
    t.script['send-volumes'] = () => ({ state: 'pending', progress: { fraction: 0.5, bytes: 2500, detail: null } })
    for (let i = 0; i < 4; i++) await t.advance()
    expect(t.stateOf('pre-copy')).toBe('running')
    const issuedBefore = t.issued.length
    // The same command ids come back from the rows: nothing is issued twice.
    await t.advance()
    expect(t.issued.length).toBe(issuedBefore)
    t.answers.set(t.rows.find((r) => r.name === 'pre-copy')!.data.send as string, { state: 'done', result: { bytes: 5000, ms: 10 } })
    t.script['send-volumes'] = undefined
    expect(await drive(t)).toBe('succeeded')
  })
})
