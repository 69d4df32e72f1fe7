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
/** Host ports for instances: away from `npm start`'s default range (20000-29999), so the
 *  suite does not collide with a system already running on this machine. */
export const HOST_PORTS = { min: 32000, max: 32699 } // below Linux's ephemeral ports (32768+)
