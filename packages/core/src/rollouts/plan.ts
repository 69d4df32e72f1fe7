/**
 * The replica and rollout step decision: a pure function of an app's instances and the time.
 * It keeps `replicas` instances of the current template running, one per ordinal, and
 * replaces instances of other templates within max-surge / max-unavailable. An instance
 * never stops while it is in a load balancer: it drains first (leaves every LB, keeps its
 * open connections for the drain time), then stops. Level-based: any input gives the next
 * safe step, so the caller may run it at any moment and any number of times.
 */

export interface PlanInstance {
  id: string
  ordinal: number
  /** Runs the app's current template (its revision's hash equals the target's). */
  current: boolean
  desiredState: 'running' | 'stopped'
  /** Leaving load balancers since (ms); null: not draining. */
  drainingSinceMs: number | null
  /** Every load-balancing node that serves the app has applied the drain. */
  drainAcked: boolean
  /** Holds no node any more (stopped and released, or never placed). */
  released: boolean
  /** Running and passing its readiness check (running, when it has none). */
  ready: boolean
  /**
   * Its node reports it running. For an instance asked to stop, that is the run being
   * stopped: the node has not reported the stop yet.
   */
  running: boolean
  /** When its process started (ms); null: unknown. */
  startedAtMs: number | null
  createdAtMs: number
  /** Cannot become ready: crash-looping, or failing to start. */
  crashing: boolean
}

export interface PlanInput {
  replicas: number
  maxSurge: number
  maxUnavailable: number
  deleted: boolean
  /** How long a leaving instance keeps its connections (0: no load balancer uses the app). */
  drainMs: number
  /** A new instance not ready after this long fails the rollout. */
  progressDeadlineMs: number
  /**
   * How long an instance must have run, ready, before it counts as available (replaces an
   * old one, counts against max-unavailable): one that crashes soon after starting never does.
   */
  minReadyMs: number
  nowMs: number
  instances: readonly PlanInstance[]
}

export interface RolloutProgress {
  oldInstances: number
  newInstances: number
  newReady: number
  /** The current step in words. */
  step: string
  /** Every replica runs the current template, ready, and nothing old is left. */
  done: boolean
  /** Why the new instances count as failed (a rollout in progress rolls back); null: they do not. */
  failure: string | null
}

export interface Plan {
  /** Ordinals that get a new instance of the current template. */
  create: number[]
  /** Stopped and released instances that a new one replaces (deleted). */
  replace: string[]
  /** Leave load balancers now. */
  drain: string[]
  /** Draining, but needed again: back into service. */
  undrain: string[]
  /** Drained (or never in a load balancer): stop. */
  stop: string[]
  /** Stopping but still on their node, needed again: run again. */
  restart: string[]
  progress: RolloutProgress
  /** When the plan may change by the clock alone (a drain ends, a deadline passes). */
  wakeAtMs: number | null
}

/** How often a drain that is over waits for the load-balancing nodes' acknowledgement. */
export const ACK_POLL_MS = 500

const live = (i: PlanInstance) => i.desiredState === 'running' && i.drainingSinceMs === null

/** When a ready instance becomes available (its minimum ready time is over). */
const availableAtMs = (i: PlanInstance, minReadyMs: number) => (i.startedAtMs === null ? 0 : i.startedAtMs + minReadyMs)
const isAvailable = (i: PlanInstance, input: Pick<PlanInput, 'minReadyMs' | 'nowMs'>) => i.ready && availableAtMs(i, input.minReadyMs) <= input.nowMs

export function planReplicas(input: PlanInput): Plan {
  const { replicas, nowMs } = input
  const available = (i: PlanInstance) => isAvailable(i, input)
  const plan: Plan = { create: [], replace: [], drain: [], undrain: [], stop: [], restart: [], progress: progressOf(input), wakeAtMs: null }
  const wake = (ms: number) => {
    if (ms > nowMs && (plan.wakeAtMs === null || ms < plan.wakeAtMs)) plan.wakeAtMs = ms
  }
  /** Takes an instance out of service: through a drain when a load balancer may hold it. */
  const retire = (i: PlanInstance) => (input.drainMs > 0 ? plan.drain : plan.stop).push(i.id)

  if (input.deleted) {
    plan.stop.push(...input.instances.filter((i) => i.desiredState === 'running').map((i) => i.id))
    return plan
  }
  const byOrdinal = new Map<number, PlanInstance[]>()
  for (const i of input.instances) byOrdinal.set(i.ordinal, [...(byOrdinal.get(i.ordinal) ?? []), i])

  // Drains that are over become stops; the others wake us when they are.
  for (const i of input.instances) {
    if (i.desiredState !== 'running' || i.drainingSinceMs === null) continue
    const mayReturn = i.current && i.ordinal < replicas && !byOrdinal.get(i.ordinal)!.some((j) => j.current && live(j))
    if (mayReturn) continue // decided per ordinal below
    const endsMs = i.drainingSinceMs + input.drainMs
    if (endsMs <= nowMs && i.drainAcked) plan.stop.push(i.id)
    // Over but not acknowledged by every load-balancing node yet: look again shortly.
    else wake(endsMs > nowMs ? endsMs : nowMs + ACK_POLL_MS)
  }

  // Ordinals past the replica count leave.
  for (const i of input.instances) if (i.ordinal >= replicas && live(i)) retire(i)

  /** Ordinals whose only live instances run another template: the rollout's work. */
  const toReplace: number[] = []
  for (let o = 0; o < replicas; o++) {
    const mine = byOrdinal.get(o) ?? []
    const cur = mine.filter((i) => i.current)
    const running = cur.filter(live)
    // Duplicates of the current template (a race elsewhere): keep one.
    for (const extra of running.slice(1)) retire(extra)
    if (running.length) continue
    const draining = cur.find((i) => i.desiredState === 'running' && i.drainingSinceMs !== null)
    const stopping = cur.find((i) => i.desiredState === 'stopped' && !i.released)
    if (draining) plan.undrain.push(draining.id)
    else if (stopping) {
      // Only once its node reported the stop: until then its status (running, ready) is the
      // old run's, and load balancers would count that run as the new one and send traffic to
      // a process that is exiting. The node's report of the stop wakes the app.
      if (!stopping.running) plan.restart.push(stopping.id)
    } else if (mine.some((i) => !i.current && live(i))) toReplace.push(o)
    else {
      plan.replace.push(...cur.filter((i) => i.desiredState === 'stopped' && i.released).map((i) => i.id))
      plan.create.push(o)
    }
  }
  // Old instances whose ordinal has a ready replacement leave.
  for (let o = 0; o < replicas; o++) {
    const mine = byOrdinal.get(o) ?? []
    if (!mine.some((i) => i.current && live(i) && available(i))) continue
    for (const i of mine) if (!i.current && live(i)) retire(i)
  }

  if (toReplace.length) {
    const leaving = new Set([...plan.drain, ...plan.stop])
    const serving = input.instances.filter((i) => live(i) && i.ordinal < replicas && !leaving.has(i.id))
    // Surge: new instances next to the old ones, up to replicas + maxSurge in service.
    let surge = Math.max(0, replicas + input.maxSurge - serving.length - plan.create.length - plan.undrain.length - plan.restart.length)
    const waiting: number[] = []
    for (const o of toReplace) {
      if (surge > 0) {
        surge--
        plan.replace.push(...(byOrdinal.get(o) ?? []).filter((i) => i.current && i.desiredState === 'stopped' && i.released).map((i) => i.id))
        plan.create.push(o)
      } else waiting.push(o)
    }
    // Unavailability: old instances may leave before their replacement while enough stay ready
    // (not-ready ones first: they serve nobody). Their ordinals get new instances next pass.
    // A new instance counts once available; an old one while ready (it serves, even if it
    // started moments ago).
    const maxUnavailable = input.maxSurge === 0 ? Math.max(1, input.maxUnavailable) : input.maxUnavailable
    const counts = (i: PlanInstance) => (i.current ? available(i) : i.ready)
    let ready = serving.filter(counts).length
    const olds = waiting
      .flatMap((o) => (byOrdinal.get(o) ?? []).filter((i) => !i.current && live(i)))
      .sort((a, b) => Number(a.ready) - Number(b.ready) || a.ordinal - b.ordinal)
    for (const i of olds) {
      if (i.ready && ready - 1 < replicas - maxUnavailable) break
      if (i.ready) ready--
      retire(i)
    }
  }

  // Deadlines of new instances that are not ready yet, and ready ones that become available
  // (only matter while old ones remain).
  if (plan.progress.oldInstances > 0)
    for (const i of input.instances) {
      if (!i.current || !live(i)) continue
      if (!i.ready) wake(i.createdAtMs + input.progressDeadlineMs)
      else wake(availableAtMs(i, input.minReadyMs))
    }
  return plan
}

function progressOf(input: PlanInput): RolloutProgress {
  const { replicas, nowMs } = input
  const inService = input.instances.filter((i) => i.desiredState === 'running')
  const olds = inService.filter((i) => !i.current)
  const news = inService.filter((i) => i.current && i.ordinal < replicas && i.drainingSinceMs === null)
  const newReady = news.filter((i) => isAvailable(i, input)).length
  const crashing = news.filter((i) => i.crashing)
  const late = news.filter((i) => !isAvailable(i, input) && !i.crashing && nowMs - i.createdAtMs >= input.progressDeadlineMs)
  const failure = crashing.length
    ? `${crashing.length} new instance${crashing.length === 1 ? '' : 's'} kept failing to run`
    : late.length
      ? `${late.length} new instance${late.length === 1 ? ' was' : 's were'} not ready after ${Math.round(input.progressDeadlineMs / 1000)}s`
      : null
  const draining = olds.filter((i) => i.drainingSinceMs !== null).length
  const done = olds.length === 0 && newReady >= replicas
  const step = done
    ? 'done'
    : news.length < replicas
      ? `starting new instances (${news.length} of ${replicas})`
      : newReady < replicas
        ? `waiting for new instances to be ready (${newReady} of ${replicas})`
        : draining
          ? `draining ${draining} old instance${draining === 1 ? '' : 's'} out of the load balancers`
          : `stopping ${olds.length} old instance${olds.length === 1 ? '' : 's'}`
  return { oldInstances: olds.length, newInstances: news.length, newReady, step, done, failure }
}
