import os from 'node:os'
import path from 'node:path'

/**
 * Ports and credentials of the system under test (shared by the config and the tests).
 * E2E_SLOT (0-9, default 0) moves every port and folder, so several checkouts on one
 * machine can run the suite at once.
 */
const SLOT = Number(process.env['E2E_SLOT'] ?? 0)
if (!Number.isInteger(SLOT) || SLOT < 0 || SLOT > 9) throw new Error('E2E_SLOT must be a whole number from 0 to 9')
export const WEB_PORT = 3200 + SLOT
export const BFF_PORT = 4200 + SLOT
export const PG_PORT = 5520 + SLOT
export const OPERATOR = { email: 'operator@alveary.local', password: 'e2e-operator-pw' }
export const DATA_DIR = path.join(os.tmpdir(), SLOT ? `alveary-e2e-${SLOT}` : 'alveary-e2e')
/** start-all.ts names its agent after ALVEARY_NODE_NAME, "local" by default. */
export const LOCAL_NODE = 'local'
/** Host ports for instances of the local agent (the BFF's default range): away from `npm
 *  start`'s default (20000-29999), so the suite does not collide with a system already
 *  running on this machine, and below Linux's ephemeral ports (32768+). */
const HOST_BASE = SLOT ? 10_000 + SLOT * 1_000 : 32_000
export const HOST_PORTS = { min: HOST_BASE, max: HOST_BASE + 299 }
/** The second agent that fleet.spec.ts starts (`--port-range`): disjoint from the local one's. */
export const SECOND_AGENT_PORTS = { min: HOST_BASE + 300, max: HOST_BASE + 699 }
/** The unsandboxed agent that isolation.spec.ts starts: disjoint from both. */
export const UNSANDBOXED_AGENT_PORTS = { min: HOST_BASE + 700, max: HOST_BASE + 799 }
/** Fast node lifecycle, so lost-node tests take seconds: heartbeat every 1 s, NotReady after
 *  3 s of silence, instances rescheduled 3 s later. */
export const LIFECYCLE = { heartbeatMs: 1_000, nodeLeaseMs: 3_000, evictionGraceMs: 3_000 }
