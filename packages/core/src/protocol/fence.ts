/**
 * Self-fencing: a node stops instances that must never run twice (those with volumes, and
 * stateless ones that opt in) by itself once it has not renewed its lease for `selfFenceMs`,
 * whether or not its agent is alive. The control plane waits longer than that before it
 * starts such an instance elsewhere.
 */
import { z } from 'zod'

/** Server -> agent, after each heartbeat is recorded: the lease is renewed as of that heartbeat. */
export const ZLeaseFrame = z.object({ type: z.literal('lease') })
export type TLeaseFrame = z.infer<typeof ZLeaseFrame>

/** Per desired instance: stop it when the lease lapses (volumes imply it). */
export const ZInstanceFence = z.object({ stopAfterDisconnect: z.boolean() })
export type TInstanceFence = z.infer<typeof ZInstanceFence>
