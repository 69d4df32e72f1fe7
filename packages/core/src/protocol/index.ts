/**
 * The agent protocol: JSON frames over the /agent WebSocket. This module is imported by
 * the node agent, so it depends on zod and the shared schemas only, never on server code.
 */
import { z } from 'zod'
import { ZDriver, ZEnv, ZRestartPolicy } from '../schemas/app'

export const PROTOCOL_VERSION = 1
/** Frames above this size close the connection (ws maxPayload). */
export const MAX_FRAME_BYTES = 1024 * 1024

/** Close codes sent with a reason. */
export const CloseCode = {
  badFrame: 4400,
  unauthorized: 4401,
  versionMismatch: 4426,
  replaced: 4409,
} as const

const ZNodeName = z.string().regex(/^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$/, 'node names are lowercase DNS labels')
const ZLabels = z.record(z.string().max(63), z.string().max(63)).refine((l) => Object.keys(l).length <= 32, 'at most 32 labels')

export const ZNodeInfo = z.object({
  name: ZNodeName,
  address: z.string().min(1).max(255),
  labels: ZLabels,
  cpuMillis: z.number().int().min(1).max(10_000_000),
  memoryMb: z.number().int().min(1).max(100_000_000),
  drivers: z.array(ZDriver).min(1),
  agentVersion: z.string().max(40),
  /** Host ports this node hands to instances; absent: the control plane's default range. */
  portRange: z
    .object({ min: z.number().int().min(1024).max(65535), max: z.number().int().min(1024).max(65535) })
    .refine((r) => r.max >= r.min, 'max must be at least min')
    .optional(),
})
export type TNodeInfo = z.infer<typeof ZNodeInfo>

export const ZObservedState = z.enum(['pending', 'pulling', 'starting', 'running', 'stopping', 'stopped', 'exited', 'failed', 'unknown'])
export type TObservedState = z.infer<typeof ZObservedState>

export const ZInstanceReport = z.object({
  instanceId: z.string().uuid(),
  state: ZObservedState,
  pid: z.number().int().positive().nullable(),
  restarts: z.number().int().min(0),
  startedAt: z.string().datetime().nullable(),
  exitCode: z.number().int().nullable(),
  message: z.string().max(2000).nullable(),
  /** App generation of the spec this instance runs. */
  generation: z.number().int().min(0),
})
export type TInstanceReport = z.infer<typeof ZInstanceReport>

// agent -> server
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
export const ZAgentMessage = z.discriminatedUnion('type', [ZHello, ZHeartbeat, ZStatusReport, ZLogs, ZMetrics])
export type TLogs = z.infer<typeof ZLogs>
export type TMetrics = z.infer<typeof ZMetrics>
export type TAgentMessage = z.infer<typeof ZAgentMessage>
export type THello = z.infer<typeof ZHello>

// server -> agent
export const ZDesiredInstance = z.object({
  instanceId: z.string().uuid(),
  tenantId: z.string().uuid(),
  appId: z.string().uuid(),
  appName: z.string(),
  ordinal: z.number().int().min(0),
  desiredState: z.enum(['running', 'stopped']),
  generation: z.number().int().min(0),
  spec: z.object({
    driver: ZDriver,
    image: z.string().nullable(),
    command: z.string().nullable(),
    args: z.array(z.string()),
    env: ZEnv,
    ports: z.array(z.object({ name: z.string(), containerPort: z.number().int().nullable(), hostPort: z.number().int() })),
    cpuMillis: z.number().int(),
    memoryMb: z.number().int(),
    restartPolicy: ZRestartPolicy,
    stopGraceSeconds: z.number().int().min(0),
  }),
})
export type TDesiredInstance = z.infer<typeof ZDesiredInstance>

export const ZWelcome = z.object({
  type: z.literal('welcome'),
  nodeId: z.string().uuid(),
  /** Present after a join: the agent stores it and uses it from now on. */
  credential: z.string().optional(),
  heartbeatIntervalMs: z.number().int().positive(),
})
export const ZDesired = z.object({
  type: z.literal('desired'),
  generation: z.number().int().min(0),
  instances: z.array(ZDesiredInstance),
})
export const ZServerMessage = z.discriminatedUnion('type', [ZWelcome, ZDesired])
export type TServerMessage = z.infer<typeof ZServerMessage>
export type TDesired = z.infer<typeof ZDesired>

/** Parses one frame; returns a reason instead of throwing so a bad peer never crashes us. */
export function parseFrame<T>(schema: z.ZodType<T>, raw: string): { ok: true; value: T } | { ok: false; reason: string } {
  let json: unknown
  try {
    json = JSON.parse(raw)
  } catch {
    return { ok: false, reason: 'frame is not JSON' }
  }
  const res = schema.safeParse(json)
  if (!res.success) {
    const issue = res.error.issues[0]
    return { ok: false, reason: `invalid frame: ${issue ? `${issue.path.join('.') || '(root)'}: ${issue.message}` : 'unknown'}` }
  }
  return { ok: true, value: res.data }
}
