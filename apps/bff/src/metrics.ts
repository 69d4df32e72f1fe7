import type { ChangeBus, ControlPlane, CoreObserver } from '@alveary/core'
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry, type Metric } from 'prom-client'
import { HEARTBEAT_LAG_BUCKETS_MS, type GatewayCounters } from './gateway/counters'

/**
 * Everything /metrics shows, in one Prometheus registry per BFF process (tests run several
 * BFFs in one process, so nothing uses prom-client's global registry). A module with
 * counters of its own registers them here: `new Counter({ …, registers: [metrics.registry] })`.
 */
export function createMetrics() {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  const registers = [registry]

  const apiDuration = new Histogram({
    name: 'alveary_api_request_duration_seconds',
    help: 'Duration of tRPC queries and mutations, by procedure and result code.',
    labelNames: ['procedure', 'type', 'code'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers,
  })
  const placementLatency = new Histogram({
    name: 'alveary_scheduling_latency_seconds',
    help: 'Time from a placement request entering the scheduler to its commit on a node (leader only).',
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers,
  })
  const heartbeatLate = new Histogram({
    name: 'alveary_agent_heartbeat_late_seconds',
    help: 'How late agent heartbeats arrive at this BFF, against the heartbeat interval.',
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60],
    registers,
  })

  const core: CoreObserver = {
    placementLatency: (s) => placementLatency.observe(s),
    heartbeatLag: (s) => heartbeatLate.observe(s),
  }

  return {
    registry,
    core,
    observeProcedure(procedure: string, type: string, seconds: number, code: string) {
      apiDuration.observe({ procedure, type, code }, seconds)
    },

    /** Gauges and counters read from the parts that keep their own counts, at each scrape. */
    watch({ gateway, bus, controlPlane }: { gateway: GatewayCounts; bus: ChangeBus; controlPlane: ControlPlane }) {
      new Gauge({
        name: 'alveary_agents_pending',
        help: 'Agent connections that have not completed their hello yet.',
        registers,
        collect() {
          this.set(gateway.pending)
        },
      })
      registry.registerMetric(
        countedHistogram('alveary_agent_heartbeat_lag_seconds', 'Time from a heartbeat arriving to its durable write (group commit included).', () => gateway.counters.heartbeatLag),
      )
      new Gauge({
        name: 'alveary_agents_welcoming',
        help: 'Agent connections being welcomed or waiting for their turn (admission control).',
        registers,
        collect() {
          this.set(gateway.welcoming)
        },
      })
      new Gauge({
        name: 'alveary_agents_connected',
        help: 'Agent WebSocket connections with a node, on this BFF.',
        registers,
        collect() {
          this.set(gateway.connected)
        },
      })
      new Counter({
        name: 'alveary_agent_frames_total',
        help: 'Agent frames handled, by frame type.',
        labelNames: ['type'] as const,
        registers,
        collect() {
          this.reset()
          for (const [type, n] of gateway.counters.frames) this.inc({ type }, n)
        },
      })
      new Counter({
        name: 'alveary_agent_rejected_total',
        help: 'Agent connections closed or refused because of the peer (or load), by reason.',
        labelNames: ['reason'] as const,
        registers,
        collect() {
          this.reset()
          for (const [reason, n] of gateway.counters.rejected) this.inc({ reason }, n)
        },
      })
      new Gauge({
        name: 'alveary_change_bus_connected',
        help: '1 while this BFF listens for change notifications from the others, 0 while it reconnects.',
        registers,
        collect() {
          this.set(bus.connected ? 1 : 0)
        },
      })
      new Counter({
        name: 'alveary_change_bus_reconnects_total',
        help: 'Times the change bus came back after its connection was lost (each followed by a full resync).',
        registers,
        collect() {
          this.reset()
          this.inc(bus.health().reconnects)
        },
      })
      const stat = (name: string, help: string, read: (s: NonNullable<ReturnType<ControlPlane['schedulerStats']>>) => number) =>
        new Counter({
          name,
          help,
          registers,
          collect() {
            this.reset()
            const s = controlPlane.schedulerStats()
            if (s) this.inc(read(s))
          },
        })
      stat('alveary_scheduler_placed_total', 'Instances placed by this BFF while leading.', (s) => s.placed)
      stat('alveary_scheduler_conflicts_total', 'Placements lost to a concurrent change at commit, while leading.', (s) => s.conflicts)
      new Gauge({
        name: 'alveary_scheduler_pending',
        help: 'Placement requests waiting in the scheduler, by queue state (leader only).',
        labelNames: ['state'] as const,
        registers,
        collect() {
          this.reset()
          const queues = controlPlane.schedulerStats()?.queues ?? []
          for (const state of ['active', 'backoff', 'parked'] as const) this.set({ state }, queues.reduce((n, q) => n + q[state], 0))
        },
      })
    },
  }
}
export type Metrics = ReturnType<typeof createMetrics>

/** What the agent gateway counts itself (apps/bff/src/gateway/counters.ts). */
interface GatewayCounts {
  readonly connected: number
  readonly pending: number
  readonly welcoming: number
  counters: Pick<GatewayCounters, 'frames' | 'rejected' | 'heartbeatLag'>
}

/**
 * A histogram that its owner counts itself (cumulative buckets in ms, count, sum), exported
 * as a Prometheus histogram: prom-client formats and escapes it like its own.
 */
function countedHistogram(name: string, help: string, read: () => GatewayCounters['heartbeatLag']): Metric {
  const get = async () => {
    const h = read()
    return {
      name,
      help,
      type: 'histogram',
      aggregator: 'sum',
      values: [
        ...HEARTBEAT_LAG_BUCKETS_MS.map((le, i) => ({ metricName: `${name}_bucket`, labels: { le: le / 1000 }, value: h.buckets[i] ?? 0 })),
        { metricName: `${name}_bucket`, labels: { le: '+Inf' }, value: h.count },
        { metricName: `${name}_sum`, labels: {}, value: h.sumMs / 1000 },
        { metricName: `${name}_count`, labels: {}, value: h.count },
      ],
    }
  }
  return { name, help, type: 'histogram', aggregator: 'sum', get, reset() {} } as unknown as Metric
}
