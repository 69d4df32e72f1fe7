/**
 * Runs the reconciler's actions: one worker per instance. A worker only remembers the latest
 * target and converges towards it in its own async loop, so a slow stop of one instance
 * never delays another, and a target that changes twice mid-stop is handled once.
 * Drivers are interchangeable: the restart policy, stops, logs and adoption work the same
 * whether a process group or a container runs the instance.
 */
import type { DriverName, InstanceHandle } from '../runtime/types'
import { reconcile } from '../reconciler'
import { DEFAULT_RESTART_BACKOFF } from './restart-policy'
import type { InstanceMetric, Supervisor, SupervisorOptions } from './types'
import { Worker, type WorkerDeps } from './worker'

export { DEFAULT_RESTART_BACKOFF, type RestartBackoff } from './restart-policy'
export type { InstanceMetric, LogEntry, Supervisor, SupervisorOptions } from './types'

export function createSupervisor(opts: SupervisorOptions): Supervisor {
  const workers = new Map<string, Worker>()
  const backoff = { ...DEFAULT_RESTART_BACKOFF, ...opts.backoff }
  /** Who waits for an instance to stop for good (a move's final copy): woken on its reports. */
  const stopWaiters = new Map<string, Set<() => void>>()
  const wakeIfStopped = (instanceId: string) => {
    const w = workers.get(instanceId)
    if (w && !w.stoppedForGood) return
    for (const wake of stopWaiters.get(instanceId) ?? []) wake()
  }
  const deps: WorkerDeps = {
    drivers: opts.drivers,
    store: opts.store,
    logger: opts.logger,
    backoff,
    onChange: (r) => {
      opts.onChange?.(r)
      // After the report is queued: a copy waiting for this stop must not delay it.
      wakeIfStopped(r.instanceId)
    },
    onLogs: opts.onLogs,
    volumes: opts.volumes,
    startContext: opts.startContext,
    onForget: (w) => {
      if (workers.get(w.instanceId) === w) workers.delete(w.instanceId)
      w.dispose()
      opts.logger.info({ instanceId: w.instanceId }, 'instance removed')
      wakeIfStopped(w.instanceId)
    },
  }

  let swept = false

  /** Once the first desired state is known: what this node owns and no worker knows goes away. */
  function removeOrphans(): void {
    const keep = new Set(workers.keys())
    for (const driver of Object.values(opts.drivers)) {
      driver?.removeOrphans?.(keep).catch((err) => opts.logger.warn({ err, driver: driver.name }, 'removing orphans failed'))
    }
  }

  return {
    async adopt(records) {
      const restoring: Array<Promise<void>> = []
      for (const rec of records) {
        if (workers.has(rec.instanceId)) continue
        const w = new Worker(rec.instanceId, deps, { hash: rec.specHash, generation: rec.generation })
        workers.set(rec.instanceId, w)
        restoring.push(w.restore(rec, opts.drivers[rec.driver]).catch((err) => opts.logger.error({ err, instanceId: rec.instanceId }, 'restore failed')))
      }
      await Promise.all(restoring)
    },
    apply(desired) {
      const actions = reconcile(
        desired,
        [...workers.values()].map((w) => w.known()),
      )
      // Stale copies that must not run twice stop before anything here starts.
      const stopping = actions.filter((a) => a.type === 'stop' || a.type === 'remove' || a.type === 'restart')
      const fenced = stopping.map((a) => workers.get(a.instanceId)).filter((w): w is Worker => !!w?.fenceRecord)
      const ordered = [...stopping, ...actions.filter((a) => !stopping.some((x) => x === a))]
      let gate: Promise<unknown> | null = null
      for (const a of ordered) {
        let w = workers.get(a.instanceId)
        if (!w) {
          if (a.type === 'stop' || a.type === 'remove') continue
          w = new Worker(a.instanceId, deps, { hash: a.specHash, generation: a.desired.generation })
          workers.set(a.instanceId, w)
        }
        if (a.type !== 'leave') opts.logger.info({ instanceId: a.instanceId }, `reconcile: ${a.type}${'reason' in a ? ` (${a.reason})` : ''}`)
        if (a.type === 'start' && fenced.length) w.holdStart((gate ??= Promise.all(fenced.map((f) => f.whenIdle()))))
        w.apply(a)
      }
      if (!swept) {
        swept = true
        removeOrphans()
      }
      // An instance told to stop that was not running stops for good here, with no report.
      for (const id of stopWaiters.keys()) wakeIfStopped(id)
      return actions
    },
    whenStopped(instanceId, timeoutMs) {
      if (workers.get(instanceId)?.stoppedForGood ?? true) return Promise.resolve(true)
      return new Promise((resolve) => {
        const waiters = stopWaiters.get(instanceId) ?? new Set()
        stopWaiters.set(instanceId, waiters)
        const done = (ok: boolean) => {
          clearTimeout(timer)
          waiters.delete(wake)
          if (!waiters.size) stopWaiters.delete(instanceId)
          resolve(ok)
        }
        const wake = () => done(true)
        const timer = setTimeout(() => done(false), timeoutMs)
        waiters.add(wake)
      })
    },
    reports: () => [...workers.values()].map((w) => w.report()),
    report: (id) => workers.get(id)?.report(),
    kill: (id, reason) => workers.get(id)?.kill(reason),
    processGroups: () => [...workers.values()].flatMap((w) => (w.processGroup === null ? [] : [w.processGroup])),
    async usage() {
      const byDriver = new Map<DriverName, Array<{ w: Worker; h: InstanceHandle }>>()
      for (const w of workers.values()) {
        const h = w.handle
        if (!h) continue
        const list = byDriver.get(h.driver) ?? []
        list.push({ w, h })
        byDriver.set(h.driver, list)
      }
      const out: InstanceMetric[] = []
      for (const [name, list] of byDriver) {
        const driver = opts.drivers[name]
        if (!driver) continue
        try {
          const usage = await driver.usage(list.map((x) => x.h))
          for (const { w, h } of list) {
            const u = usage.get(h)
            if (u) out.push({ instanceId: w.instanceId, driver: name, cpuMillis: Math.max(0, Math.round(u.cpuMillis)), memoryMb: Math.max(0, Math.round(u.memoryMb)) })
          }
        } catch (err) {
          opts.logger.warn({ err, driver: name }, 'measuring instance usage failed')
        }
      }
      return out
    },
    checkpoint() {
      for (const w of workers.values()) w.checkpoint()
    },
    async settled() {
      // Finishing one step can start another (a stop followed by a start), so wait until a pass finds all idle.
      for (;;) {
        await Promise.all([...workers.values()].map((w) => w.whenIdle()))
        await new Promise((r) => setImmediate(r))
        if (![...workers.values()].some((w) => w.busy)) return
      }
    },
    async stopAll(graceCapSeconds) {
      await Promise.all([...workers.values()].map((w) => w.shutdown(graceCapSeconds)))
    },
    detach() {
      for (const w of workers.values()) w.dispose()
      workers.clear()
    },
    flush: () => opts.store.flush(),
    poke() {
      for (const w of workers.values()) w.poke()
    },
    mountedVolumes: () => new Set([...workers.values()].flatMap((w) => w.mountedVolumeIds)),
    async fenceStale(stale) {
      await Promise.all(
        [...workers.values()].map(async (w) => {
          const f = w.fenceRecord
          const why = f && (await stale(f))
          if (why) await w.fenceOff(why)
        }),
      )
    },
  }
}
