/** Frames the server sends. */
import { z } from 'zod'
import { ZLeaseFrame } from './fence'
import { ZDesiredInstance, ZStagedInstance } from './instance'
import { ZCommandFrame } from './volume'
import { ZDesiredLb } from './lb'
import { ZCounter, ZIntervalMs } from './limits'
import { ZDesiredNetwork } from './network'

export const ZWelcome = z.object({
  type: z.literal('welcome'),
  nodeId: z.string().uuid(),
  /** Present after a join: the agent stores it and uses it from now on. */
  credential: z.string().max(200).optional(),
  heartbeatIntervalMs: ZIntervalMs,
  /** Instances that need fencing stop by themselves when the lease is not renewed for this long. */
  selfFenceMs: z.number().int().min(1000).max(3_600_000).optional(),
})
export const ZDesired = z.object({
  type: z.literal('desired'),
  generation: ZCounter,
  instances: z.array(ZDesiredInstance).max(10_000),
  /** Load balancers this node serves (load-balancing nodes only; absent: none). */
  loadBalancers: z.array(ZDesiredLb).max(1000).optional(),
  /** Tenant networks this node hosts; reconciled before the instances that use them. */
  networks: z.array(ZDesiredNetwork).max(1000).default([]),
  /**
   * Instances a move will bring here (capacity is reserved, the source still runs them): their
   * network attachment is prepared but kept unlinked until they are desired here. Absent from
   * older servers; older agents ignore it (they attach at start).
   */
  staged: z.array(ZStagedInstance).max(1000).optional(),
})
export const ZServerMessage = z.discriminatedUnion('type', [ZWelcome, ZDesired, ZLeaseFrame, ZCommandFrame])
export type TServerMessage = z.infer<typeof ZServerMessage>
export type TDesired = z.infer<typeof ZDesired>
