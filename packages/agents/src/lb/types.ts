/** A load-balancer data plane on a node: HAProxy, or the built-in Node proxy where HAProxy is missing. */
import type { TDesiredLb, TLbDriver, TLbReport } from '@alveary/core/protocol'
import type { LbNamespace } from '../network/overlay/lb-join'
import type { RawServerStat } from './stats'

export interface LbPlane {
  readonly name: TLbDriver
  /** Reaches servers inside tenant networks (HAProxy built with network namespace support). */
  readonly joinsNetworks: boolean
  /**
   * Serves exactly these load balancers (level-based); says how each one fares. Servers on a
   * tenant network are reached from that network's namespace in `netns` (by network id); with
   * none there (or no `netns`: the node joined no network) they are down. Calls are serialized.
   */
  apply(lbs: readonly TDesiredLb[], netns?: ReadonlyMap<string, LbNamespace>): Promise<TLbReport[]>
  /** Running totals per server of what it serves now (empty when it serves nothing). */
  stats(): Promise<RawServerStat[]>
  stop(): Promise<void>
}
