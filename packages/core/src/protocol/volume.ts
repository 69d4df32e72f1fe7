/**
 * Volumes on the wire: what a node offers (hello capabilities), what an instance mounts
 * (desired state, with the fencing epoch of its attachment), and the one-shot commands a
 * move sends to agents (copy a volume to a peer, prepare an instance) with their answers.
 */
import { z } from 'zod'

export const ZVolumeDriver = z.enum(['local', 'shared'])
export type TVolumeDriver = z.infer<typeof ZVolumeDriver>

const ZReason = z.string().max(300)
const uuid = z.string().uuid()

/** What a node offers for volumes (hello `capabilities.volume`). */
export const ZVolumeCapability = z.object({
  drivers: z.array(ZVolumeDriver).max(2),
  /** Why `shared` is missing although shared storage was configured. */
  sharedReason: ZReason.optional(),
  /** How local volumes leave this node; null: they cannot (with the reason). */
  copy: z.enum(['rsync']).nullable(),
  copyReason: ZReason.optional(),
  /** A send may wait for an instance here to stop (`send-volumes` `afterStopOf`); older agents would send at once. */
  copyAfterStop: z.boolean().optional(),
  /** The node stops instances that need fencing by itself when its lease lapses (a watchdog per instance). */
  selfFence: z.boolean(),
  selfFenceReason: ZReason.optional(),
  /** Live moves: checkpoint/restore of containers through Podman and CRIU >= 4.2. */
  checkpoint: z.object({ ok: z.boolean(), reason: ZReason.optional() }),
})
export type TVolumeCapability = z.infer<typeof ZVolumeCapability>

/** Absolute path inside the instance, no `..`, not the root. */
export const ZMountPath = z
  .string()
  .max(200)
  .regex(/^\/[A-Za-z0-9._/-]*$/, 'An absolute path of letters, digits, . _ - and /')
  .refine((p) => p !== '/' && !p.split('/').includes('..'), 'Not / and no .. segments')

/** One volume an instance mounts, with the epoch of its attachment (the fencing token). */
export const ZMount = z.object({
  volumeId: uuid,
  name: z.string().max(31).regex(/^[a-z][a-z0-9-]{0,30}$/),
  driver: ZVolumeDriver,
  path: ZMountPath,
  sizeMb: z.number().int().min(1).max(16 * 1024 * 1024),
  epoch: z.number().int().min(1).max(2_000_000_000),
})
export type TMount = z.infer<typeof ZMount>

/** Volumes a command copies, receives or discards. */
const ZVolumeRef = z.object({ volumeId: uuid, tenantId: uuid, driver: ZVolumeDriver })
const ZVolumeRefs = z.array(ZVolumeRef).min(1).max(16)
/** A one-time secret for one copy session (the target accepts only a peer that knows it). */
const ZSecret = z.string().regex(/^[A-Za-z0-9_-]{32,128}$/)
const ZHost = z.string().min(1).max(255)

export const ZAgentCommand = z.discriminatedUnion('kind', [
  /**
   * Target of a move: create the volumes' folders (empty), pull the image and (`instanceId`, for
   * an instance on a tenant network, staged in the desired state) prepare its network attachment
   * unlinked, so the start is quick.
   * Agents that do not know `instanceId` ignore it and attach the network at start.
   */
  z.object({ kind: z.literal('prepare-instance'), driver: z.enum(['process', 'docker']), image: z.string().max(255).nullable(), volumes: z.array(ZVolumeRef).max(16), instanceId: uuid.optional() }),
  /** Target: accept a copy of these volumes from a peer that knows `secret`; answers the port to send to. */
  z.object({ kind: z.literal('receive-volumes'), volumes: ZVolumeRefs, secret: ZSecret }),
  /**
   * Source: copy these volumes to a peer that is receiving them (only what changed when it already
   * has a copy). `afterStopOf`: not before that instance is stopped here for good (a move's final
   * copy, sent with the stop, starts the moment it is gone; see `copyAfterStop`).
   */
  z.object({ kind: z.literal('send-volumes'), volumes: ZVolumeRefs, to: z.object({ address: ZHost, port: z.number().int().min(1).max(65535) }), secret: ZSecret, final: z.boolean(), afterStopOf: uuid.optional() }),
  /** Target: stop receiving. */
  z.object({ kind: z.literal('close-receive'), volumes: ZVolumeRefs }),
  /** Either node: delete this node's copy of volumes no instance here mounts any more. */
  z.object({ kind: z.literal('discard-volumes'), volumes: ZVolumeRefs }),
])
export type TAgentCommand = z.infer<typeof ZAgentCommand>
export type TAgentCommandKind = TAgentCommand['kind']

/** What a command answers when it succeeded, per kind. */
export const ZCommandResult = z.object({
  /** receive-volumes: where the source sends to. */
  port: z.number().int().min(1).max(65535).optional(),
  /** send-volumes: bytes that crossed the wire and how long it took. */
  bytes: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
  ms: z.number().int().min(0).max(86_400_000).optional(),
})
export type TCommandResult = z.infer<typeof ZCommandResult>

export const ZCommandProgress = z.object({
  /** 0..1 of the work, when the agent can tell. */
  fraction: z.number().min(0).max(1).nullable(),
  bytes: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  detail: z.string().max(300).nullable(),
})
export type TCommandProgress = z.infer<typeof ZCommandProgress>

/** Server -> agent. Agents execute each id at most once and answer it again if asked twice. */
export const ZCommandFrame = z.object({ type: z.literal('command'), id: uuid, command: ZAgentCommand })
/** Agent -> server: the acknowledgement, success or failure. */
export const ZCommandResultFrame = z.object({
  type: z.literal('command-result'),
  id: uuid,
  ok: z.boolean(),
  result: ZCommandResult.optional(),
  error: z.string().max(2000).optional(),
})
export const ZCommandProgressFrame = z.object({ type: z.literal('command-progress'), id: uuid, progress: ZCommandProgress })
/** Space each local or shared volume on the node uses (measured by the agent). */
export const ZVolumeUsage = z.object({
  type: z.literal('volume-usage'),
  volumes: z.array(z.object({ volumeId: uuid, usedBytes: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER) })).max(10_000),
})
export type TCommandFrame = z.infer<typeof ZCommandFrame>
export type TCommandResultFrame = z.infer<typeof ZCommandResultFrame>
export type TCommandProgressFrame = z.infer<typeof ZCommandProgressFrame>
export type TVolumeUsage = z.infer<typeof ZVolumeUsage>
