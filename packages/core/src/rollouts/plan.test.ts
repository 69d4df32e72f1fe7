import { describe, expect, it } from 'vitest'
import { ACK_POLL_MS, planReplicas, type Plan, type PlanInput, type PlanInstance } from './plan'

const inst = (id: string, ordinal: number, over: Partial<PlanInstance> = {}): PlanInstance => ({
  id,
  ordinal,
  current: true,
  desiredState: 'running',
  drainingSinceMs: null,
  drainAcked: true,
  released: false,
  ready: true,
  running: true,
  startedAtMs: null,
  createdAtMs: 0,
  crashing: false,
  ...over,
})
const base = (instances: PlanInstance[], over: Partial<PlanInput> = {}): PlanInput => ({
  replicas: 3,
  maxSurge: 1,
  maxUnavailable: 1,
  deleted: false,
  drainMs: 5_000,
  progressDeadlineMs: 60_000,
  minReadyMs: 0,
  nowMs: 1_000,
  instances,
  ...over,
})

/**
 * Drives the planner like the controller does: applies each plan to a simulated app where
 * new instances become ready after `readyAfterMs` (never when `broken`), and checks the
 * availability and surge bounds at every step.
 */
function simulate(o: { replicas: number; maxSurge: number; maxUnavailable: number; broken?: boolean; drainMs?: number }) {
  let nowMs = 0
  let seq = 0
  let instances: PlanInstance[] = Array.from({ length: o.replicas }, (_, k) => inst(`old-${k}`, k, { current: false }))
  const drainMs = o.drainMs ?? 2_000
  const readyAfterMs = 1_000
  const minReady = o.replicas - Math.max(o.maxSurge === 0 ? 1 : 0, o.maxUnavailable)
  let minOldReady = Infinity
  for (let step = 0; step < 500; step++) {
    instances = instances.map((i) => (i.current && !o.broken && nowMs - i.createdAtMs >= readyAfterMs ? { ...i, ready: true, running: true } : i))
    const plan = planReplicas(base(instances, { ...o, drainMs, nowMs, progressDeadlineMs: 10_000 }))
    if (plan.progress.done || plan.progress.failure) return { plan, nowMs, instances, minOldReady }
    instances = apply(instances, plan, nowMs, () => `new-${seq++}`)
    const serving = instances.filter((i) => i.desiredState === 'running' && i.drainingSinceMs === null)
    expect(serving.filter((i) => i.ready).length, `ready at ${nowMs}ms`).toBeGreaterThanOrEqual(minReady)
    expect(serving.length, `in service at ${nowMs}ms`).toBeLessThanOrEqual(o.replicas + o.maxSurge)
    minOldReady = Math.min(minOldReady, serving.filter((i) => !i.current && i.ready).length)
    nowMs += 250
  }
  throw new Error('the rollout never finished')
}

function apply(instances: PlanInstance[], plan: Plan, nowMs: number, newId: () => string): PlanInstance[] {
  const set = (ids: string[], f: (i: PlanInstance) => PlanInstance) => {
    instances = instances.map((i) => (ids.includes(i.id) ? f(i) : i))
  }
  set(plan.drain, (i) => ({ ...i, drainingSinceMs: nowMs }))
  set(plan.undrain, (i) => ({ ...i, drainingSinceMs: null }))
  set(plan.stop, (i) => ({ ...i, desiredState: 'stopped', ready: false, running: false, released: true, drainingSinceMs: null }))
  set(plan.restart, (i) => ({ ...i, desiredState: 'running' }))
  instances = instances.filter((i) => !plan.replace.includes(i.id))
  for (const o of plan.create) instances.push(inst(newId(), o, { ready: false, running: false, createdAtMs: nowMs }))
  return instances
}

describe('planReplicas', () => {
  it('does nothing when every replica runs the current template', () => {
    const plan = planReplicas(base([inst('a', 0), inst('b', 1), inst('c', 2)]))
    expect(plan).toMatchObject({ create: [], drain: [], stop: [], undrain: [], restart: [], replace: [] })
    expect(plan.progress).toMatchObject({ done: true, step: 'done', failure: null })
  })

  it('creates missing ordinals and replaces released stopped instances', () => {
    const plan = planReplicas(base([inst('a', 0), inst('b', 1, { desiredState: 'stopped', released: true })]))
    expect(plan.create).toEqual([1, 2])
    expect(plan.replace).toEqual(['b'])
  })

  it('drains an instance before stopping it on scale-down, and stops it once the drain is over and acknowledged', () => {
    const three = [inst('a', 0), inst('b', 1), inst('c', 2)]
    expect(planReplicas(base(three, { replicas: 2 })).drain).toEqual(['c'])
    const draining = [inst('a', 0), inst('b', 1), inst('c', 2, { drainingSinceMs: 0, drainAcked: false })]
    const early = planReplicas(base(draining, { replicas: 2, nowMs: 4_000 }))
    expect(early.stop).toEqual([])
    expect(early.wakeAtMs).toBe(5_000)
    const waiting = planReplicas(base(draining, { replicas: 2, nowMs: 6_000 }))
    expect(waiting.stop).toEqual([]) // not acknowledged yet: asks to look again soon
    expect(waiting.wakeAtMs).toBe(6_000 + ACK_POLL_MS)
    const acked = draining.map((i) => ({ ...i, drainAcked: true }))
    expect(planReplicas(base(acked, { replicas: 2, nowMs: 6_000 })).stop).toEqual(['c'])
  })

  it('stops at once when no load balancer uses the app', () => {
    expect(planReplicas(base([inst('a', 0), inst('b', 1)], { replicas: 1, drainMs: 0 })).stop).toEqual(['b'])
  })

  it('takes a draining instance back when it is needed again (scale up during a drain)', () => {
    const plan = planReplicas(base([inst('a', 0), inst('b', 1, { drainingSinceMs: 0 })], { replicas: 2 }))
    expect(plan).toMatchObject({ undrain: ['b'], create: [], stop: [] })
  })

  it('runs again an instance that is stopping but still on its node', () => {
    const plan = planReplicas(base([inst('a', 0), inst('b', 1, { desiredState: 'stopped', released: false, ready: false, running: false })], { replicas: 2 }))
    expect(plan).toMatchObject({ restart: ['b'], create: [] })
  })

  it('runs a stopped instance again only once its node reported the stop (scale down, then up at once)', () => {
    // Its status is still the old run's (running, ready): restarting it now would put that run
    // back into load balancers while the node stops it (HAProxy's 503s in bench:lb).
    const stopNotSeen = [inst('a', 0), inst('b', 1, { desiredState: 'stopped', released: false })]
    expect(planReplicas(base(stopNotSeen, { replicas: 2 }))).toMatchObject({ restart: [], create: [], replace: [] })
    const stopping = [inst('a', 0), inst('b', 1, { desiredState: 'stopped', released: false, ready: false, running: false })]
    expect(planReplicas(base(stopping, { replicas: 2 }))).toMatchObject({ restart: ['b'], create: [] })
  })

  it.each([
    { maxSurge: 1, maxUnavailable: 1 },
    { maxSurge: 1, maxUnavailable: 0 },
    { maxSurge: 0, maxUnavailable: 1 },
    { maxSurge: 3, maxUnavailable: 2 },
  ])('rolls out within max-surge $maxSurge and max-unavailable $maxUnavailable', ({ maxSurge, maxUnavailable }) => {
    const { plan, instances } = simulate({ replicas: 5, maxSurge, maxUnavailable })
    expect(plan.progress).toMatchObject({ done: true, newReady: 5, oldInstances: 0 })
    expect(instances.filter((i) => i.desiredState === 'running').every((i) => i.current)).toBe(true)
  })

  it('reports a broken revision as failed while old instances keep serving', () => {
    const broken = simulate({ replicas: 4, maxSurge: 1, maxUnavailable: 1, broken: true })
    expect(broken.plan.progress.failure).toMatch(/not ready after 10s/)
    // Never more than max-unavailable old instances left before the failure was seen.
    expect(broken.minOldReady).toBeGreaterThanOrEqual(3)
  })

  it('reports crash-looping new instances at once', () => {
    const plan = planReplicas(base([inst('old', 0, { current: false }), inst('new', 0, { ready: false, crashing: true })], { replicas: 1 }))
    expect(plan.progress.failure).toMatch(/kept failing/)
  })

  it('counts a new instance only once it has run for the minimum ready time, and wakes then', () => {
    const instances = [inst('old', 0, { current: false }), inst('new', 0, { startedAtMs: 500 })]
    const early = planReplicas(base(instances, { replicas: 1, minReadyMs: 3_000, nowMs: 2_000 }))
    expect(early.drain).toEqual([])
    expect(early.progress).toMatchObject({ newReady: 0, done: false })
    expect(early.wakeAtMs).toBe(3_500)
    const later = planReplicas(base(instances, { replicas: 1, minReadyMs: 3_000, nowMs: 3_500 }))
    expect(later.drain).toEqual(['old'])
    expect(later.progress.newReady).toBe(1)
  })

  it('an old instance that started moments ago still counts as serving for max-unavailable', () => {
    const instances = [inst('old-0', 0, { current: false, startedAtMs: 900 }), inst('old-1', 1, { current: false, startedAtMs: 900 })]
    const plan = planReplicas(base(instances, { replicas: 2, maxSurge: 1, maxUnavailable: 1, minReadyMs: 3_000, nowMs: 1_000 }))
    expect(plan.create).toEqual([0])
    expect(plan.drain).toEqual(['old-1'])
  })

  it('a new instance that keeps crashing soon after it starts never replaces an old one, and fails at the deadline', () => {
    // Restarted at 9.5 s (each start resets startedAtMs): running, but never for 3 s.
    const instances = [inst('old', 0, { current: false }), inst('new', 0, { startedAtMs: 9_500 })]
    const plan = planReplicas(base(instances, { replicas: 1, minReadyMs: 3_000, progressDeadlineMs: 10_000, nowMs: 10_000 }))
    expect(plan.drain).toEqual([])
    expect(plan.progress.failure).toMatch(/not ready after 10s/)
  })

  it('after a rollback, the old instances are current again and the failed new ones leave', () => {
    // Revision 3 copies revision 1's template: old-* are current, new-* are not.
    const instances = [
      inst('old-0', 0),
      inst('old-1', 1, { drainingSinceMs: 500 }),
      inst('old-2', 2),
      inst('new-0', 0, { current: false, ready: false }),
      inst('new-1', 1, { current: false, ready: false }),
    ]
    const plan = planReplicas(base(instances))
    expect(plan.undrain).toEqual(['old-1'])
    expect(plan.drain).toEqual(['new-0'])
    expect(plan.create).toEqual([])
  })

  it('stops everything of a deleted app', () => {
    const plan = planReplicas(base([inst('a', 0), inst('b', 1, { drainingSinceMs: 0 })], { deleted: true }))
    expect(plan.stop.sort()).toEqual(['a', 'b'])
  })
})
