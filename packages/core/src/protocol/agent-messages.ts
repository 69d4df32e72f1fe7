/** Frames an agent sends. */
import { z } from 'zod'
import { ZInstanceReport } from './instance'
import { ZLbReport, ZLbServerStat } from './lb'
import { ZCounter, ZMegabytes, ZMillicores, ZTimestamp, zText } from './limits'
import { ZNodeInfo } from './node'
import { ZCommandProgressFrame, ZCommandResultFrame, ZVolumeUsage } from './volume'

export const ZHello = z.object({
  type: z.literal('hello'),
  protocolVersion: z.number().int().min(0).max(65_535),
  auth: z.union([
    z.object({ joinToken: zText(200).min(10) }),
    z.object({ nodeId: z.string().uuid(), credential: zText(200).min(10) }),
  ]),
  node: ZNodeInfo,
  /**
   * Random per agent process run. A hello with the runId of the node's live connection is
   * the same agent reconnecting (it may take over at once); any other hello for a node with
   * a live connection is a second agent with the same identity and is refused. Optional so
   * hand-written clients still connect; without it they never take over a live connection.
   */
  runId: z.string().uuid().optional(),
})
export const ZHeartbeat = z.object({
  type: z.literal('heartbeat'),
  cpuUsedMillis: ZMillicores,
  memoryUsedMb: ZMegabytes,
  appliedGeneration: ZCounter,
})
export const ZStatusReport = z.object({
  type: z.literal('status'),
  /** Full = every instance the agent knows; absent instances are not running. */
  full: z.boolean(),
  instances: z.array(ZInstanceReport).max(10_000),
  /** Load-balancing nodes: the load balancers served, as of desired-state generation `lbGeneration`. */
  loadBalancers: z.array(ZLbReport).max(1000).optional(),
  lbGeneration: ZCounter.optional(),
})
/** Instance output, batched (stdout and stderr of every driver). */
export const ZLogs = z.object({
  type: z.literal('logs'),
  entries: z
    .array(
      z.object({
        instanceId: z.string().uuid(),
        stream: z.enum(['stdout', 'stderr']),
        ts: ZTimestamp,
        line: zText(8192),
      }),
    )
    .max(2000),
})
/** Per-instance resource use, sampled periodically (node totals travel in heartbeats). */
export const ZMetrics = z.object({
  type: z.literal('metrics'),
  ts: ZTimestamp,
  instances: z.array(z.object({ instanceId: z.string().uuid(), cpuMillis: ZMillicores, memoryMb: ZMegabytes })).max(10_000),
})
/** Load-balancing nodes: per-server traffic of every load balancer served, sampled periodically. */
export const ZLbStats = z.object({
  type: z.literal('lb-stats'),
  servers: z.array(ZLbServerStat).max(20_000),
})
export const ZAgentMessage = z.discriminatedUnion('type', [ZHello, ZHeartbeat, ZStatusReport, ZLogs, ZMetrics, ZCommandResultFrame, ZCommandProgressFrame, ZVolumeUsage, ZLbStats])
export type TLogs = z.infer<typeof ZLogs>
export type TMetrics = z.infer<typeof ZMetrics>
export type TAgentMessage = z.infer<typeof ZAgentMessage>
export type THello = z.infer<typeof ZHello>
