/** One instance on the wire: the desired spec the server sends, the status the agent reports. */
import { z } from 'zod'
import { ZDriver, ZEnv, ZProbe, ZRestartPolicy } from '../schemas/app'
import { ZInstanceFence } from './fence'
import { ZMount } from './volume'

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
  /** Health checks; absent when the instance has none. */
  health: z
    .object({
      /** Readiness; null when the instance has no readiness check (ready while running). */
      ready: z.boolean().nullable(),
      /** The last failed check ("readiness http :8080/healthz: status 500") and when it failed. */
      lastFailure: z.string().max(500).nullable(),
      lastFailureAt: z.string().datetime().nullable(),
    })
    .optional(),
})
export type TInstanceReport = z.infer<typeof ZInstanceReport>

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
    ports: z
      .array(
        z.object({
          name: z.string(),
          containerPort: z.number().int().nullable(),
          hostPort: z.number().int(),
          readiness: ZProbe.optional(),
          liveness: ZProbe.optional(),
        }),
      )
      .max(8),
    cpuMillis: z.number().int(),
    memoryMb: z.number().int(),
    restartPolicy: ZRestartPolicy,
    stopGraceSeconds: z.number().int().min(0),
  }),
  /** Volumes to mount, each with the epoch of its attachment; agents act only on the current epoch. */
  mounts: z.array(ZMount).max(16).default([]),
  fence: ZInstanceFence.default({ stopAfterDisconnect: false }),
})
export type TDesiredInstance = z.infer<typeof ZDesiredInstance>
