/**
 * Health checks next to the instances: one checker per running instance run (a restart is a
 * new run with fresh counters), started when the instance runs and stopped when it does not.
 * Checks reach the instance where its port is published on this node.
 */
import type { TDesiredInstance, TInstanceReport } from '@alveary/core/protocol'
import { startChecker, type Check, type Checker, type Health } from './checker'

export interface HealthMonitor {
  /** The checks the desired state asks for (level-based: the whole list each time). */
  setDesired(instances: readonly TDesiredInstance[]): void
  /** An instance's observed state changed. */
  observe(report: TInstanceReport): void
  /** Health for the instance's report; undefined when it has no checks. */
  health(instanceId: string): Health | undefined
  stop(): void
}

export function createHealthMonitor(hooks: { onChange(instanceId: string): void; onLivenessFailed(instanceId: string, reason: string): void }): HealthMonitor {
  const specs = new Map<string, TDesiredInstance['spec']>()
  const running = new Map<string, { key: string; checker: Checker }>()
  /** What the last run reported, kept after it ended so the console still shows the last failure. */
  const last = new Map<string, Health>()

  const checksOf = (spec: TDesiredInstance['spec']): Check[] =>
    spec.ports.flatMap((p) =>
      (['readiness', 'liveness'] as const).flatMap((kind) => {
        const probe = p[kind]
        return probe ? [{ kind, portName: p.name, probe, target: { host: '127.0.0.1', port: p.hostPort } }] : []
      }),
    )

  function sync(report: TInstanceReport) {
    const id = report.instanceId
    const spec = specs.get(id)
    const checks = spec ? checksOf(spec) : []
    const key = report.state === 'running' && checks.length ? `${report.startedAt}|${JSON.stringify(checks)}` : null
    const cur = running.get(id)
    if (cur && cur.key === key) return
    if (cur) {
      last.set(id, { ...cur.checker.health(), ready: cur.checker.health().ready === null ? null : false })
      cur.checker.stop()
      running.delete(id)
    }
    if (!checks.length) last.delete(id)
    if (key === null) return
    const checker = startChecker(checks, {
      onChange: () => hooks.onChange(id),
      onLivenessFailed: (reason) => hooks.onLivenessFailed(id, reason),
    })
    running.set(id, { key, checker })
  }

  return {
    setDesired(instances) {
      const wanted = new Set(instances.map((i) => i.instanceId))
      for (const i of instances) specs.set(i.instanceId, i.spec)
      for (const id of [...specs.keys()]) if (!wanted.has(id)) specs.delete(id)
      for (const [id, r] of running) if (!wanted.has(id)) (r.checker.stop(), running.delete(id), last.delete(id))
    },
    observe: sync,
    health(instanceId) {
      const r = running.get(instanceId)
      if (r) {
        const h = r.checker.health()
        const prev = last.get(instanceId)
        // A new run has not failed yet: the previous run's failure stays visible.
        return h.lastFailure === null && prev ? { ...h, lastFailure: prev.lastFailure, lastFailureAt: prev.lastFailureAt } : h
      }
      const spec = specs.get(instanceId)
      if (!spec || !checksOf(spec).length) return undefined
      const prev = last.get(instanceId)
      return { ready: spec.ports.some((p) => p.readiness) ? false : null, lastFailure: prev?.lastFailure ?? null, lastFailureAt: prev?.lastFailureAt ?? null }
    },
    stop() {
      for (const r of running.values()) r.checker.stop()
      running.clear()
    },
  }
}
