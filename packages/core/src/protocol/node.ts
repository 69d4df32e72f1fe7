/** What an agent says about its node in hello. */
import { z } from 'zod'
import { ZDriver } from '../schemas/app'
import { ZVolumeCapability } from './volume'
import { ZLbDriver } from './lb'
import { zText } from './limits'
import { ZNetworkMode } from './network'
import { ZContainerCapability, ZSandboxCapability } from './sandbox'

const ZNodeName = z.string().regex(/^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$/, 'node names are lowercase DNS labels')
const ZLabels = z.record(zText(63).min(1), zText(63)).refine((l) => Object.keys(l).length <= 32, 'at most 32 labels')

export const ZNodeInfo = z.object({
  name: ZNodeName,
  address: zText(255).min(1),
  labels: ZLabels,
  cpuMillis: z.number().int().min(1).max(10_000_000),
  memoryMb: z.number().int().min(1).max(100_000_000),
  drivers: z.array(ZDriver).min(1).max(ZDriver.options.length),
  agentVersion: zText(40),
  /** What the node can do beyond running instances, per kind; absent kinds: nothing. */
  capabilities: z
    .object({
      /** Load-balancer data plane. */
      lb: ZLbDriver.nullable().default(null),
      /**
       * The data plane can join tenant networks (overlay, and HAProxy built with network
       * namespace support): its backends are then instance IPs, else node address and host port.
       */
      lbNetworks: z.boolean().optional(),
      /** Volume drivers, copies, self-fencing, live moves. */
      volume: ZVolumeCapability.optional(),
      /** Tenant networks: overlay, or host networking only (absent: host). */
      network: ZNetworkMode.optional(),
      /** Process-instance isolation (absent: unsandboxed, an agent from before sandboxes). */
      sandbox: ZSandboxCapability.optional(),
      /** Container isolation by the engine (absent: no docker driver, or an agent from before). */
      containers: ZContainerCapability.optional(),
    })
    .prefault({}),
  /** Host ports this node hands to instances; absent: the control plane's default range. */
  portRange: z
    .object({ min: z.number().int().min(1024).max(65535), max: z.number().int().min(1024).max(65535) })
    .refine((r) => r.max >= r.min, 'max must be at least min')
    .optional(),
})
export type TNodeInfo = z.infer<typeof ZNodeInfo>
