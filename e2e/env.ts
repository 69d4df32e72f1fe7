import os from 'node:os'
import path from 'node:path'

/** Ports and credentials of the system under test (shared by the config and the tests). */
export const WEB_PORT = 3200
export const BFF_PORT = 4200
export const PG_PORT = 5520
export const OPERATOR = { email: 'operator@alveary.local', password: 'e2e-operator-pw' }
export const DATA_DIR = path.join(os.tmpdir(), 'alveary-e2e')
/** start-all.ts names its agent after ALVEARY_NODE_NAME, "local" by default. */
export const LOCAL_NODE = 'local'
/** Host ports for instances of the local agent (the BFF's default range): away from `npm
 *  start`'s default (20000-29999), so the suite does not collide with a system already
 *  running on this machine, and below Linux's ephemeral ports (32768+). */
export const HOST_PORTS = { min: 32000, max: 32299 }
/** The second agent that fleet.spec.ts starts (`--port-range`): disjoint from the local one's. */
export const SECOND_AGENT_PORTS = { min: 32300, max: 32699 }
/** Fast node lifecycle, so lost-node tests take seconds: heartbeat every 1 s, NotReady after
 *  3 s of silence, instances rescheduled 3 s later. */
export const LIFECYCLE = { heartbeatMs: 1_000, nodeLeaseMs: 3_000, evictionGraceMs: 3_000 }
