/** Frames an agent sends. */
import { z } from 'zod'
import { ZInstanceReport } from './instance'
import { ZLbReport } from './lb'
import { ZNodeInfo } from './node'
import { ZCommandProgressFrame, ZCommandResultFrame, ZVolumeUsage } from './volume'

export const ZHello = z.object({
  type: z.literal('hello'),
  protocolVersion: z.number().int(),
  auth: z.union([
    z.object({ joinToken: z.string().min(10).max(200) }),
    z.object({ nodeId: z.string().uuid(), credential: z.string().min(10).max(200) }),
  ]),
  node: ZNodeInfo,
})
export const ZHeartbeat = z.object({
  type: z.literal('heartbeat'),
  cpuUsedMillis: z.number().int().min(0),
  memoryUsedMb: z.number().int().min(0),
  appliedGeneration: z.number().int().min(0),
})
export const ZStatusReport = z.object({
  type: z.literal('status'),
  /** Full = every instance the agent knows; absent instances are not running. */
  full: z.boolean(),
  instances: z.array(ZInstanceReport).max(10_000),
  /** Load-balancing nodes: the load balancers served, as of desired-state generation `lbGeneration`. */
  loadBalancers: z.array(ZLbReport).max(1000).optional(),
  lbGeneration: z.number().int().min(0).optional(),
})
/** Instance output, batched (stdout and stderr of every driver). */
export const ZLogs = z.object({
  type: z.literal('logs'),
  entries: z
    .array(
      z.object({
        instanceId: z.string().uuid(),
        stream: z.enum(['stdout', 'stderr']),
        ts: z.string().datetime(),
        line: z.string().max(8192),
      }),
    )
    .max(2000),
})
/** Per-instance resource use, sampled periodically (node totals travel in heartbeats). */
export const ZMetrics = z.object({
  type: z.literal('metrics'),
  ts: z.string().datetime(),
  instances: z.array(z.object({ instanceId: z.string().uuid(), cpuMillis: z.number().int().min(0), memoryMb: z.number().int().min(0) })).max(10_000),
})
export const ZAgentMessage = z.discriminatedUnion('type', [ZHello, ZHeartbeat, ZStatusReport, ZLogs, ZMetrics, ZCommandResultFrame, ZCommandProgressFrame, ZVolumeUsage])
export type TLogs = z.infer<typeof ZLogs>
export type TMetrics = z.infer<typeof ZMetrics>
export type TAgentMessage = z.infer<typeof ZAgentMessage>
export type THello = z.infer<typeof ZHello>
