/** Frames the server sends. */
import { z } from 'zod'
import { ZDesiredInstance } from './instance'
import { ZDesiredLb } from './lb'
import { ZCounter, ZIntervalMs } from './limits'
import { ZDesiredNetwork } from './network'

export const ZWelcome = z.object({
  type: z.literal('welcome'),
  nodeId: z.string().uuid(),
  /** Present after a join: the agent stores it and uses it from now on. */
  credential: z.string().max(200).optional(),
  heartbeatIntervalMs: ZIntervalMs,
})
export const ZDesired = z.object({
  type: z.literal('desired'),
  generation: ZCounter,
  instances: z.array(ZDesiredInstance).max(10_000),
  /** Load balancers this node serves (load-balancing nodes only; absent: none). */
  loadBalancers: z.array(ZDesiredLb).max(1000).optional(),
  /** Tenant networks this node hosts; reconciled before the instances that use them. */
  networks: z.array(ZDesiredNetwork).max(1000).default([]),
})
export const ZServerMessage = z.discriminatedUnion('type', [ZWelcome, ZDesired])
export type TServerMessage = z.infer<typeof ZServerMessage>
export type TDesired = z.infer<typeof ZDesired>
