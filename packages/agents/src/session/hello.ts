/** The hello frame, pure: who the agent is (identity.ts) and what its node has and can do. */
import { PROTOCOL_VERSION, type TContainerCapability, type THello, type TLbDriver, type TNetworkMode, type TSandboxCapability, type TVolumeCapability } from '@alveary/core/protocol'
import type { AgentConfig } from '../config'
import type { DriverName } from '../runtime/types'
import { AGENT_VERSION } from '../version'

export interface NodeOffer {
  drivers: DriverName[]
  /** The load-balancer data plane; null: none. */
  lb: TLbDriver | null
  /** The data plane reaches instances inside tenant networks (network/overlay/lb-join.ts). */
  lbJoinsNetworks: boolean
  network: { mode: TNetworkMode; isolated: boolean }
  sandbox: TSandboxCapability
  /** Process instances run sandboxed here. */
  sandboxed: boolean
  volume: TVolumeCapability | null
  /** How the container engine isolates containers; null: no docker driver. */
  containers: TContainerCapability | null
}

/** `runId` is random per run: the server tells this agent reconnecting from a second agent with the same identity. */
export function helloFrame(config: AgentConfig, auth: THello['auth'], runId: string, offer: NodeOffer): THello {
  return {
    type: 'hello',
    protocolVersion: PROTOCOL_VERSION,
    auth,
    node: {
      name: config.name,
      address: config.address,
      labels: config.labels,
      cpuMillis: config.cpuMillis,
      memoryMb: config.memoryMb,
      ...(config.portRange && { portRange: config.portRange }),
      drivers: offer.drivers,
      agentVersion: AGENT_VERSION,
      capabilities: {
        lb: offer.lb,
        lbNetworks: !!offer.lb && offer.lbJoinsNetworks,
        network: offer.network.mode,
        sandbox: { ...offer.sandbox, ...(offer.sandboxed && { network: offer.network.isolated ? 'own' : 'node' }) },
        ...(offer.volume && { volume: offer.volume }),
        ...(offer.containers && { containers: offer.containers }),
      },
    },
    runId,
  }
}
