/**
 * Per-instance usage: sampled every interval from every driver and sent as `metrics` frames
 * (at most 10,000 instances a frame). Containers' totals are kept for the heartbeats, whose
 * own meter sees process groups only. Each sample also checkpoints the log cursors.
 */
import type { Logger } from 'pino'
import type { TAgentMessage } from '@alveary/core/protocol'
import type { Supervisor } from './supervisor'

export function createMetrics(o: {
  supervisor: Pick<Supervisor, 'checkpoint' | 'usage'>
  /** False while disconnected: nothing is sent. */
  connected(): boolean
  send(frame: TAgentMessage): void
  log: Logger
}) {
  const { supervisor, log } = o
  let timer: NodeJS.Timeout | null = null
  let sampling = false
  let stopped = false
  /** Docker usage from the last sample. */
  let dockerTotals = { cpuMillis: 0, memoryMb: 0 }

  async function sample(): Promise<void> {
    if (sampling || stopped) return
    sampling = true
    try {
      supervisor.checkpoint()
      const usage = await supervisor.usage()
      const docker = usage.filter((u) => u.driver === 'docker')
      dockerTotals = { cpuMillis: docker.reduce((a, u) => a + u.cpuMillis, 0), memoryMb: docker.reduce((a, u) => a + u.memoryMb, 0) }
      if (!o.connected() || usage.length === 0) return
      const ts = new Date().toISOString()
      for (let i = 0; i < usage.length; i += 10_000) {
        const instances = usage.slice(i, i + 10_000).map(({ instanceId, cpuMillis, memoryMb }) => ({ instanceId, cpuMillis, memoryMb }))
        o.send({ type: 'metrics', ts, instances })
      }
    } catch (err) {
      log.warn({ err }, 'sampling instance metrics failed')
    } finally {
      sampling = false
    }
  }

  return {
    start(intervalMs: number): void {
      timer = setInterval(() => void sample(), intervalMs)
      timer.unref()
    },
    /** No sample starts any more. */
    stop(): void {
      stopped = true
      if (timer) clearInterval(timer)
      timer = null
    },
    /** CPU and memory of the containers, as of the last sample. */
    dockerTotals: () => dockerTotals,
  }
}
