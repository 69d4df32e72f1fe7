/** One instance on the wire: the desired spec the server sends, the status the agent reports. */
import { z } from 'zod'
import { ZDriver, ZEnv, ZProbe, ZRestartPolicy } from '../schemas/app'
import { ZInstanceFence } from './fence'
import { ZMount } from './volume'
import { ZCounter, ZExitCode, ZMegabytes, ZMillicores, ZPid, ZTimestamp, zText } from './limits'
import { ZInstanceInterface } from './network'

export const ZObservedState = z.enum(['pending', 'pulling', 'starting', 'running', 'stopping', 'stopped', 'exited', 'failed', 'unknown'])
export type TObservedState = z.infer<typeof ZObservedState>

/**
 * Why a run ended: its own exit, a signal, the kernel at its memory limit, the agent after failed
 * liveness checks, the agent stopping it (desired state, spec change, shutdown), or unknown (it
 * ended while no agent watched it).
 */
export const ZExitReason = z.enum(['exited', 'signaled', 'oomKilled', 'unhealthy', 'stopped', 'lost'])
export type TExitReason = z.infer<typeof ZExitReason>

/** How the last run ended, kept while the instance restarts and runs again (Kubernetes' lastState.terminated). */
export const ZLastExit = z.object({
  reason: ZExitReason,
  exitCode: ZExitCode.nullable(),
  signal: z
    .string()
    .regex(/^SIG[A-Z0-9+]{1,12}$/)
    .nullable(),
  message: zText(2000),
  at: ZTimestamp,
})
export type TLastExit = z.infer<typeof ZLastExit>

export const ZInstanceReport = z.object({
  instanceId: z.string().uuid(),
  state: ZObservedState,
  pid: ZPid.nullable(),
  restarts: ZCounter,
  startedAt: ZTimestamp.nullable(),
  exitCode: ZExitCode.nullable(),
  message: zText(2000).nullable(),
  /** The previous run's end; absent until a run of this instance ended (and from older agents). */
  lastExit: ZLastExit.optional(),
  /** App generation of the spec this instance runs. */
  generation: ZCounter,
  /** Health checks; absent when the instance has none. */
  health: z
    .object({
      /** Readiness; null when the instance has no readiness check (ready while running). */
      ready: z.boolean().nullable(),
      /** The last failed check ("readiness http :8080/healthz: status 500") and when it failed. */
      lastFailure: zText(500).nullable(),
      lastFailureAt: ZTimestamp.nullable(),
    })
    .optional(),
})
export type TInstanceReport = z.infer<typeof ZInstanceReport>

/** The tenant's unprivileged uid/gid (never root or a system account): what the node runs its instances as. */
export const ZRunAs = z.object({
  uid: z.number().int().min(1000).max(2_147_483_646),
  gid: z.number().int().min(1000).max(2_147_483_646),
})
export type TRunAs = z.infer<typeof ZRunAs>

export const ZDesiredInstance = z.object({
  instanceId: z.string().uuid(),
  tenantId: z.string().uuid(),
  runAs: ZRunAs,
  appId: z.string().uuid(),
  appName: z.string().max(63),
  ordinal: ZCounter,
  desiredState: z.enum(['running', 'stopped']),
  generation: ZCounter,
  spec: z.object({
    driver: ZDriver,
    image: z.string().max(255).nullable(),
    command: z.string().max(1024).nullable(),
    args: z.array(z.string().max(4096)).max(64),
    env: ZEnv,
    ports: z
      .array(
        z.object({
          name: z.string().max(15),
          containerPort: z.number().int().min(1).max(65_535).nullable(),
          hostPort: z.number().int().min(0).max(65_535),
          readiness: ZProbe.optional(),
          liveness: ZProbe.optional(),
        }),
      )
      .max(8),
    cpuMillis: ZMillicores,
    memoryMb: ZMegabytes,
    /** Absent: the node's default (sent only when set, so older instances' spec hashes stay the same). */
    pidsMax: z.number().int().min(1).max(4_194_304).optional(),
    /** Docker: read-only image filesystem, /tmp a tmpfs (sent only when true). */
    readOnlyRootfs: z.literal(true).optional(),
    restartPolicy: ZRestartPolicy,
    stopGraceSeconds: z.number().int().min(0).max(3_600),
  }),
  /** Volumes to mount, each with the epoch of its attachment; agents act only on the current epoch. */
  mounts: z.array(ZMount).max(16).default([]),
  fence: ZInstanceFence.default({ stopAfterDisconnect: false }),
  /** Tenant network interfaces (at most one today); empty: host networking. */
  interfaces: z.array(ZInstanceInterface).max(4).default([]),
})
export type TDesiredInstance = z.infer<typeof ZDesiredInstance>

/**
 * An instance a move is bringing to this node while its source still serves it: the node
 * prepares its network namespace with the same address, the link to the bridge left down, so
 * the address is never live on two nodes; the start then only links it.
 */
export const ZStagedInstance = z.object({
  instanceId: z.string().uuid(),
  driver: ZDriver,
  interfaces: z.array(ZInstanceInterface).max(4),
})
export type TStagedInstance = z.infer<typeof ZStagedInstance>
