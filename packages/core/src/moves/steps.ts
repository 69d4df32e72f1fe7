/**
 * The steps of a move, in order, each with its compensation. Decision logic only: the
 * world (stores, scheduler), the agents (the AgentCommands port) and the clock come in
 * through the closure, so the steps are tested with in-memory fakes.
 *
 *   reserve → prepare-target → pre-copy → stop-source → final-copy → move-fence →
 *   start-target → wait-ready → switch-lb → release-source
 *
 * Until move-fence the instance is assigned to the source; a failure before it leaves the
 * source serving (or, once stopped, starts it there again). After it, compensation stops
 * the target copy, copies back what it wrote (local volumes), and moves the fence back.
 */
import { randomBytes, randomUUID } from 'node:crypto'
import type { AgentCommands, CommandState } from '../agents/commands'
import type { Clock } from '../clock'
import type { TAgentCommand } from '../protocol'
import { fenceVerdict } from './fencing'
import type { Step, StepContext, StepOutcome, UndoOutcome } from './saga'
import type { MoveConfig, MoveNode, MoveRecord, MoveWorld, MovingInstance } from './types'

type Ctx = StepContext<MoveRecord>

const MiB = 1024 * 1024
const COMMAND_TIMEOUT_MS = 10 * 60_000
const CLEANUP_TIMEOUT_MS = 30_000

const fmtBytes = (n: number) => (n >= MiB ? `${(n / MiB).toFixed(1)} MiB` : `${Math.round(n / 1024)} KiB`)

export function createMoveSteps(deps: { world: MoveWorld; agents: AgentCommands; clock: Clock; config: MoveConfig }): Step<MoveRecord>[] {
  const { world, agents, clock, config } = deps

  const must = async <T>(what: string, p: Promise<T | null>): Promise<T> => {
    const v = await p
    if (!v) throw new Error(`${what} is gone`)
    return v
  }
  const instanceOf = (ctx: Ctx) => must('the instance', world.instance(ctx.move.instanceId))
  const targetOf = (ctx: Ctx): string | null => (ctx.dataOf('reserve').nodeId as string | undefined) ?? null
  const localVolumes = (inst: MovingInstance) => inst.volumes.filter((v) => v.driver === 'local').map((v) => ({ volumeId: v.id, tenantId: inst.tenantId, driver: v.driver }))

  /** Issues a command once per key of the step's scratch (the id survives a crash) and returns its state. */
  async function command(ctx: Ctx, key: string, nodeId: string, cmd: TAgentCommand, timeoutMs = COMMAND_TIMEOUT_MS): Promise<CommandState> {
    let id = ctx.data[key] as string | undefined
    if (!id) {
      id = randomUUID()
      await ctx.save({ [key]: id })
    }
    const st = await agents.run(id, nodeId, cmd, { timeoutMs, wake: { kind: 'move', moveId: ctx.move.id } })
    if (st.state !== 'pending') return st
    // A node that went away will not answer before the timeout: give up on it now.
    const node = await world.node(nodeId)
    return node && lost(node) ? { state: 'failed', error: `${node.name} does not answer` } : st
  }

  /** Disconnected for longer than a lease: not a blip (an agent restart), a lost node. */
  const lost = (node: MoveNode) => !node.connected && (!node.lastHeartbeatAt || clock.now().getTime() - node.lastHeartbeatAt.getTime() > config.nodeLeaseMs)

  /** Waits until the copy on `nodeId` certainly does not run (reported stopped, or the node fenced itself). */
  async function stoppedOn(nodeId: string, instanceId: string, since: Date) {
    const [node, observed] = await Promise.all([world.node(nodeId), world.observed(instanceId)])
    return { node, verdict: fenceVerdict({ observed, node, since, now: clock.now(), selfFenceMs: config.selfFenceMs, marginMs: config.fenceMarginMs }) }
  }

  /**
   * Copies the local volumes from one node to another: the receiver opens a session for a
   * one-time secret, the sender copies (rsync: a delta when the receiver has a copy).
   * `close`: the receiver's session is closed before the copy counts as done; without it,
   * the instance's start on the receiver closes it (an agent ends every copy session into a
   * volume before it mounts it), which keeps a command round trip out of the downtime.
   */
  async function copy(ctx: Ctx, inst: MovingInstance, from: MoveNode, to: MoveNode, prefix: string, final: boolean, close = final): Promise<StepOutcome> {
    const volumes = localVolumes(inst)
    let secret = ctx.data.secret as string | undefined
    if (!secret) {
      secret = randomBytes(32).toString('base64url')
      await ctx.save({ secret })
    }
    const rcv = await command(ctx, `${prefix}receive`, to.id, { kind: 'receive-volumes', volumes, secret })
    if (rcv.state === 'failed') return { kind: 'fail', error: `${to.name} cannot receive the volume: ${rcv.error}` }
    if (rcv.state === 'pending') return { kind: 'wait', detail: `opening a copy session on ${to.name}` }
    const port = rcv.result.port
    if (!port) return { kind: 'fail', error: `${to.name} opened no copy session` }
    const snd = await command(ctx, `${prefix}send`, from.id, { kind: 'send-volumes', volumes, to: { address: to.address, port }, secret, final })
    if (snd.state === 'failed') return { kind: 'fail', error: `copy from ${from.name} to ${to.name} failed: ${snd.error}` }
    if (snd.state === 'pending') {
      if (lost(to)) return { kind: 'fail', error: `${to.name} does not answer` }
      const p = snd.progress
      return { kind: 'wait', detail: p ? `copying to ${to.name}: ${fmtBytes(p.bytes)}${p.detail ? `, ${p.detail}` : ''}` : `copying to ${to.name}`, progress: p?.fraction ?? null }
    }
    const bytes = snd.result.bytes ?? 0
    const ms = snd.result.ms ?? 0
    if (!ctx.data[`${prefix}recorded`]) {
      await world.record(ctx.move.id, { copied: { bytes, ms } })
      await ctx.save({ [`${prefix}recorded`]: true })
    }
    if (close) {
      const closed = await command(ctx, `${prefix}close`, to.id, { kind: 'close-receive', volumes }, CLEANUP_TIMEOUT_MS)
      if (closed.state === 'pending') return { kind: 'wait', detail: `closing the copy session on ${to.name}` }
    }
    const speed = ms > 0 ? `, ${fmtBytes((bytes * 1000) / ms)}/s` : ''
    return { kind: 'done', bytes, detail: `${fmtBytes(bytes)} copied to ${to.name} in ${(ms / 1000).toFixed(1)}s${speed}` }
  }

  /**
   * The final copy, issued with the stop: the source's agent starts it the moment the instance
   * is stopped there for good, instead of once its report has reached the control plane and
   * the next step has asked (final-copy then waits for this command). Only to an agent that can
   * hold a send (`copyAfterStop`; an older one would copy at once, before the stop) and once the
   * pre-copy's session is open; otherwise, or after a crash before it went out, final-copy issues
   * its own send as before.
   */
  async function sendWithStop(ctx: Ctx, inst: MovingInstance): Promise<void> {
    const volumes = localVolumes(inst)
    const pre = ctx.dataOf('pre-copy')
    const target = targetOf(ctx)
    if (!volumes.length || !target || typeof pre.receive !== 'string' || typeof pre.secret !== 'string') return
    const [source, to] = await Promise.all([world.node(ctx.move.sourceNodeId), world.node(target)])
    if (!source?.volume?.copyAfterStop || !to) return
    const rcv = await agents.run(pre.receive, to.id, { kind: 'receive-volumes', volumes, secret: pre.secret }, { timeoutMs: COMMAND_TIMEOUT_MS, wake: { kind: 'move', moveId: ctx.move.id } })
    if (rcv.state !== 'done' || !rcv.result.port) return
    await command(ctx, 'finalSend', source.id, { kind: 'send-volumes', volumes, to: { address: to.address, port: rcv.result.port }, secret: pre.secret, final: true, afterStopOf: inst.id })
  }

  /** A cleanup command whose failure must not block the compensation: it is reported, not retried forever. */
  async function cleanup(ctx: Ctx, key: string, nodeId: string, cmd: TAgentCommand, what: string): Promise<UndoOutcome> {
    const node = await world.node(nodeId)
    if (!node) return { kind: 'done', detail: `${what}: the node is gone` }
    const st = await command(ctx, key, nodeId, cmd, CLEANUP_TIMEOUT_MS)
    if (st.state === 'pending') return { kind: 'wait', detail: `${what} on ${node.name}` }
    return { kind: 'done', detail: st.state === 'failed' ? `${what} on ${node.name} failed: ${st.error}` : `${what} on ${node.name}` }
  }

  const reserve: Step<MoveRecord> = {
    name: 'reserve',
    timeoutMs: 60_000,
    async run(ctx) {
      const inst = await world.instance(ctx.move.instanceId)
      if (!inst || inst.desiredState !== 'running') return { kind: 'fail', error: 'the instance was deleted or stopped' }
      if (inst.nodeId !== ctx.move.sourceNodeId) return { kind: 'fail', error: 'the instance is no longer on the source node' }
      const source = await world.node(ctx.move.sourceNodeId)
      if (localVolumes(inst).length && !source?.volume?.copy) {
        return { kind: 'fail', error: `${source?.name ?? 'the source node'} cannot copy volumes${source?.volume?.copyReason ? `: ${source.volume.copyReason}` : ''}` }
      }
      const res = await world.reserve(ctx.move, inst)
      if ('reason' in res) return { kind: 'fail', error: `no node can take it: ${res.reason}` }
      await ctx.save({ nodeId: res.nodeId })
      await world.record(ctx.move.id, { targetNodeId: res.nodeId })
      const target = await world.node(res.nodeId)
      return { kind: 'done', detail: `capacity held on ${target?.name ?? res.nodeId}` }
    },
    async compensate(ctx) {
      const target = targetOf(ctx)
      if (target) await world.unreserve(ctx.move.id, target)
      return { kind: 'done', detail: 'capacity released' }
    },
  }

  const prepareTarget: Step<MoveRecord> = {
    name: 'prepare-target',
    timeoutMs: COMMAND_TIMEOUT_MS + 30_000,
    async run(ctx) {
      const inst = await instanceOf(ctx)
      const target = await must('the target node', world.node(targetOf(ctx)!))
      const st = await command(ctx, 'prepare', target.id, { kind: 'prepare-instance', driver: inst.driver, image: inst.image, volumes: localVolumes(inst), ...(inst.networked && { instanceId: inst.id }) })
      if (st.state === 'failed') return { kind: 'fail', error: `${target.name} cannot prepare the instance: ${st.error}` }
      if (st.state === 'pending') return { kind: 'wait', detail: inst.image ? `pulling ${inst.image} on ${target.name}` : `preparing ${target.name}` }
      return { kind: 'done', detail: `${target.name} is ready to run it` }
    },
    async compensate(ctx) {
      const inst = await world.instance(ctx.move.instanceId)
      const target = targetOf(ctx)
      const volumes = inst ? localVolumes(inst).filter((v) => inst.volumes.find((x) => x.id === v.volumeId)?.nodeId !== target) : []
      // Never the copy an attachment points at: only the target's partial copy goes.
      if (!inst || !target || !volumes.length) return { kind: 'done' }
      return cleanup(ctx, 'discard', target, { kind: 'discard-volumes', volumes }, 'deleted the partial copy')
    },
  }

  const preCopy: Step<MoveRecord> = {
    name: 'pre-copy',
    timeoutMs: COMMAND_TIMEOUT_MS * 3,
    async run(ctx) {
      const inst = await instanceOf(ctx)
      if (!localVolumes(inst).length) return { kind: 'skipped', detail: inst.volumes.length ? 'shared volumes: nothing to copy' : 'no volumes' }
      const [source, target] = await Promise.all([must('the source node', world.node(ctx.move.sourceNodeId)), must('the target node', world.node(targetOf(ctx)!))])
      return copy(ctx, inst, source, target, '', false)
    },
    async compensate(ctx) {
      const inst = await world.instance(ctx.move.instanceId)
      const target = targetOf(ctx)
      if (!inst || !target || !localVolumes(inst).length || !ctx.data.receive) return { kind: 'done' }
      return cleanup(ctx, 'close', target, { kind: 'close-receive', volumes: localVolumes(inst) }, 'closed the copy session')
    },
  }

  const stopSource: Step<MoveRecord> = {
    name: 'stop-source',
    timeoutMs: 10 * 60_000,
    async run(ctx) {
      const inst = await instanceOf(ctx)
      let pausedAt = ctx.data.pausedAt ? new Date(ctx.data.pausedAt as string) : null
      if (!pausedAt) {
        const [source, observed] = await Promise.all([world.node(ctx.move.sourceNodeId), world.observed(inst.id)])
        const now = clock.now()
        const servingHere = observed?.nodeId === ctx.move.sourceNodeId && observed.state === 'running' && observed.ready !== false
        // Ready until told to stop; a lost node was last known serving at its last heartbeat.
        const lastReadyAt = source?.connected ? (servingHere ? now : (observed?.at ?? now)) : (source?.lastHeartbeatAt ?? observed?.at ?? now)
        await world.record(ctx.move.id, { lastReadyAt })
        await world.setPaused(inst.id, true)
        pausedAt = now
        await ctx.save({ pausedAt: now.toISOString() })
        await sendWithStop(ctx, inst)
      }
      const { verdict } = await stoppedOn(ctx.move.sourceNodeId, inst.id, pausedAt)
      return verdict.stopped ? { kind: 'done', detail: verdict.detail } : { kind: 'wait', detail: verdict.detail }
    },
    async compensate(ctx) {
      const inst = await world.instance(ctx.move.instanceId)
      if (inst && inst.nodeId === ctx.move.sourceNodeId) await world.setPaused(inst.id, false)
      return { kind: 'done', detail: 'the instance runs at the source again' }
    },
  }

  const finalCopy: Step<MoveRecord> = {
    name: 'final-copy',
    timeoutMs: COMMAND_TIMEOUT_MS * 3,
    async run(ctx) {
      const inst = await instanceOf(ctx)
      if (!localVolumes(inst).length) return { kind: 'skipped', detail: inst.volumes.length ? 'shared volumes: nothing to copy' : 'no volumes' }
      const [source, target] = await Promise.all([must('the source node', world.node(ctx.move.sourceNodeId)), must('the target node', world.node(targetOf(ctx)!))])
      // The pre-copy's session and secret: the same module, so rsync sends only what changed.
      // The target's start closes the session (or, when the move fails, pre-copy's compensation).
      const pre = ctx.dataOf('pre-copy')
      if (!ctx.data.secret && pre.secret) await ctx.save({ secret: pre.secret, receive: pre.receive })
      // Sent with the stop: this step waits for that command instead of issuing one.
      const withStop = ctx.dataOf('stop-source').finalSend
      if (!ctx.data.send && typeof withStop === 'string') await ctx.save({ send: withStop })
      return copy(ctx, inst, source, target, '', true, false)
    },
    async compensate() {
      return { kind: 'done' }
    },
  }

  const moveFence: Step<MoveRecord> = {
    name: 'move-fence',
    timeoutMs: 60_000,
    async run(ctx) {
      const inst = await instanceOf(ctx)
      const target = targetOf(ctx)!
      await world.switchPlacement(ctx.move, ctx.move.sourceNodeId, target)
      const after = await instanceOf(ctx)
      const epochs = inst.volumes.map((v) => `${v.name} ${v.epoch}→${after.volumes.find((x) => x.id === v.id)?.epoch ?? '?'}`).join(', ')
      return { kind: 'done', detail: epochs ? `attached to the target (epoch ${epochs})` : 'assigned to the target' }
    },
    async compensate(ctx) {
      const inst = await world.instance(ctx.move.instanceId)
      const target = targetOf(ctx)
      if (!inst || !target || inst.nodeId !== target) return { kind: 'done', detail: 'the fence never moved' }
      // The target ran and may have written: bring its writes back before the source resumes.
      const ran = ctx.dataOf('start-target').ran === true
      if (ran && localVolumes(inst).length && !ctx.data.copiedBack) {
        const [source, tnode] = await Promise.all([world.node(ctx.move.sourceNodeId), world.node(target)])
        if (source && tnode?.connected && source.connected) {
          const out = await copy(ctx, inst, tnode, source, 'back-', true)
          if (out.kind === 'wait') return { kind: 'wait', detail: `copying the target's writes back: ${out.detail ?? ''}` }
          await ctx.save({ copiedBack: out.kind === 'done' ? 'yes' : `failed: ${out.kind === 'fail' ? out.error : ''}` })
        } else await ctx.save({ copiedBack: `no: ${tnode?.name ?? 'the target'} does not answer` })
      }
      await world.switchPlacement(ctx.move, target, ctx.move.sourceNodeId)
      const back = ctx.data.copiedBack
      return { kind: 'done', detail: `the fence is back at the source${back && back !== 'yes' ? `; the target's writes were not copied back (${back})` : ''}` }
    },
  }

  const startTarget: Step<MoveRecord> = {
    name: 'start-target',
    timeoutMs: 3 * 60_000,
    async run(ctx) {
      const target = targetOf(ctx)!
      const [node, observed] = await Promise.all([world.node(target), world.observed(ctx.move.instanceId)])
      const name = node?.name ?? 'the target'
      if (!node || lost(node)) return { kind: 'fail', error: `${name} does not answer` }
      if (observed?.nodeId !== target) return { kind: 'wait', detail: `starting on ${name}` }
      if (observed.state === 'running') {
        await ctx.save({ ran: true })
        return { kind: 'done', detail: `running on ${name}` }
      }
      if (observed.state === 'failed' || observed.state === 'exited') {
        await ctx.save({ ran: true })
        return { kind: 'fail', error: `it did not start on ${name}: ${observed.message ?? observed.state}` }
      }
      return { kind: 'wait', detail: `${observed.state} on ${name}` }
    },
    async compensate(ctx) {
      const inst = await world.instance(ctx.move.instanceId)
      const target = targetOf(ctx)
      if (!inst || !target || inst.nodeId !== target) return { kind: 'done' }
      let since = ctx.data.pausedAt ? new Date(ctx.data.pausedAt as string) : null
      if (!since) {
        since = clock.now()
        await world.setPaused(inst.id, true)
        await ctx.save({ pausedAt: since.toISOString() })
      }
      const { verdict } = await stoppedOn(target, inst.id, since)
      return verdict.stopped ? { kind: 'done', detail: verdict.detail } : { kind: 'wait', detail: verdict.detail }
    },
  }

  const waitReady: Step<MoveRecord> = {
    name: 'wait-ready',
    timeoutMs: 3 * 60_000,
    async run(ctx) {
      const target = targetOf(ctx)!
      const [node, observed] = await Promise.all([world.node(target), world.observed(ctx.move.instanceId)])
      if (!node || lost(node)) return { kind: 'fail', error: `${node?.name ?? 'the target'} does not answer` }
      if (observed?.nodeId === target && (observed.state === 'failed' || observed.state === 'exited')) {
        return { kind: 'fail', error: `it stopped on the target: ${observed.message ?? observed.state}` }
      }
      if (observed?.nodeId !== target || observed.state !== 'running') return { kind: 'wait', detail: 'waiting for it to run' }
      if (observed.ready === false) return { kind: 'wait', detail: `waiting for readiness${observed.message ? ` (${observed.message})` : ''}` }
      await world.record(ctx.move.id, { firstReadyAt: observed.at })
      return { kind: 'done', detail: observed.ready === null ? 'running (no readiness check)' : 'ready' }
    },
    async compensate() {
      return { kind: 'done' }
    },
  }

  const switchLb: Step<MoveRecord> = {
    name: 'switch-lb',
    timeoutMs: 2 * 60_000,
    async run(ctx) {
      let generations = ctx.data.generations as Record<string, number> | undefined
      if (!generations) {
        const g = await world.switchLoadBalancers(ctx.move.instanceId)
        if (!g) return { kind: 'skipped', detail: 'no load balancer serves this app' }
        generations = g
        await ctx.save({ generations })
      }
      const lbs = await world.loadBalancersApplied(generations)
      const nodes = (n: number) => `${n} load-balancing node${n === 1 ? '' : 's'}`
      if (lbs.applied < lbs.total) return { kind: 'wait', detail: `${lbs.applied} of ${nodes(lbs.total)} switched`, progress: lbs.applied / lbs.total }
      return { kind: 'done', detail: `${nodes(lbs.total)} send its traffic to the target` }
    },
    // Backends follow the placement: moving the fence back switches them back.
    async compensate() {
      return { kind: 'done' }
    },
  }

  const releaseSource: Step<MoveRecord> = {
    name: 'release-source',
    timeoutMs: 2 * 60_000,
    async run(ctx) {
      const inst = await instanceOf(ctx)
      await world.unreserve(ctx.move.id, ctx.move.sourceNodeId)
      const source = await world.node(ctx.move.sourceNodeId)
      const volumes = localVolumes(inst)
      if (!volumes.length || !source) return { kind: 'done', detail: 'capacity on the source released' }
      if (!source.connected && !ctx.data.discard) return { kind: 'done', detail: `capacity released; the old copy stays on ${source.name} (it does not answer) and is fenced` }
      const st = await command(ctx, 'discard', source.id, { kind: 'discard-volumes', volumes }, CLEANUP_TIMEOUT_MS)
      if (st.state === 'pending') return { kind: 'wait', detail: `deleting the old copy on ${source.name}` }
      return { kind: 'done', detail: st.state === 'failed' ? `capacity released; deleting the old copy on ${source.name} failed: ${st.error}` : `capacity and the old copy on ${source.name} released` }
    },
    async compensate() {
      return { kind: 'done' }
    },
  }

  return [reserve, prepareTarget, preCopy, stopSource, finalCopy, moveFence, startTarget, waitReady, switchLb, releaseSource]
}

export const STEP_NAMES = ['reserve', 'prepare-target', 'pre-copy', 'stop-source', 'final-copy', 'move-fence', 'start-target', 'wait-ready', 'switch-lb', 'release-source'] as const
