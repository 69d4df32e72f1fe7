/**
 * Heartbeats: the node's usage and the generation of the desired state it applied, every
 * interval the welcome named, and at once after a desired state (rollouts and consoles wait for
 * the acknowledgement). One at a time: a beat asked for while one is in flight follows it, so
 * the last one sent carries the latest generation. Per-server load-balancer traffic rides
 * along, at most every LB_STATS_MS.
 */
import type { Logger } from 'pino'
import type { TAgentMessage, TLbServerStat } from '@alveary/core/protocol'
import type { UsageMeter } from '../usage'

/** How often a load-balancing node sends its per-server traffic (with a heartbeat). */
const LB_STATS_MS = 5_000

export function createHeartbeats(o: {
  meter: UsageMeter
  processGroups(): number[]
  /** Usage the meter does not see (containers), added to its totals. */
  extraUsage(): { cpuMillis: number; memoryMb: number }
  appliedGeneration(): number
  /** False while disconnected: nothing is sent. */
  connected(): boolean
  send(frame: TAgentMessage): void
  /** After each heartbeat sent. */
  onSent(): void
  /** The load-balancer server (lb/serve.ts); null: none here. */
  lb(): { stats(): Promise<TLbServerStat[]> } | null
  log: Logger
}) {
  const { log } = o
  let timer: NodeJS.Timeout | null = null
  let beating = false
  let beatAgain = false
  let lbStatsAtMs = 0

  async function sendLbStats(): Promise<void> {
    const lb = o.lb()
    if (!lb || Date.now() - lbStatsAtMs < LB_STATS_MS) return
    lbStatsAtMs = Date.now()
    try {
      const servers = await lb.stats()
      if (o.connected()) o.send({ type: 'lb-stats', servers: servers.slice(0, 20_000) })
    } catch (err) {
      log.debug({ err }, 'load-balancer statistics unavailable')
    }
  }

  async function beat(): Promise<void> {
    if (beating) {
      // One in flight may carry an older applied generation: send another right after it.
      beatAgain = true
      return
    }
    beating = true
    beatAgain = false
    try {
      const usage = await o.meter.sample(o.processGroups())
      const extra = o.extraUsage()
      usage.cpuUsedMillis += extra.cpuMillis
      usage.memoryUsedMb += extra.memoryMb
      if (o.connected()) {
        o.send({ type: 'heartbeat', ...usage, appliedGeneration: o.appliedGeneration() })
        o.onSent()
        await sendLbStats()
      }
    } catch (err) {
      log.warn({ err }, 'heartbeat failed')
    } finally {
      beating = false
      if (beatAgain) void beat()
    }
  }

  return {
    beat,
    /** Beats every `intervalMs` (at least 100 ms: a bogus tiny interval from the server must not make a busy loop). */
    start(intervalMs: number): void {
      if (timer) clearInterval(timer)
      timer = setInterval(() => void beat(), Math.max(100, intervalMs))
    },
    stop(): void {
      if (timer) clearInterval(timer)
      timer = null
    },
  }
}
