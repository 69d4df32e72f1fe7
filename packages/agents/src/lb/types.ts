/** A load-balancer data plane on a node: HAProxy, or the built-in Node proxy where HAProxy is missing. */
import type { TDesiredLb, TLbDriver, TLbReport } from '@alveary/core/protocol'
import type { RawServerStat } from './stats'

export interface LbPlane {
  readonly name: TLbDriver
  /** Serves exactly these load balancers (level-based); says how each one fares. Calls are serialized. */
  apply(lbs: readonly TDesiredLb[]): Promise<TLbReport[]>
  /** Running totals per server of what it serves now (empty when it serves nothing). */
  stats(): Promise<RawServerStat[]>
  stop(): Promise<void>
}
