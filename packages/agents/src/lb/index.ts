/** Picks the node's load-balancer data plane: HAProxy where it runs, else the built-in proxy. */
import path from 'node:path'
import type { Logger } from 'pino'
import type { AgentConfig } from '../config'
import { createBuiltinPlane } from './builtin/plane'
import { createHaproxyPlane, probeHaproxy } from './haproxy/driver'
import type { LbPlane } from './types'

export type { LbPlane } from './types'

export async function detectLbPlane(config: AgentConfig, logger: Logger): Promise<LbPlane | null> {
  if (config.lbDriver === 'none') return null
  const log = logger.child({ component: 'lb' })
  if (config.lbDriver !== 'builtin') {
    const probe = await probeHaproxy()
    if (probe.ok) {
      log.info({ version: probe.version, namespaces: probe.namespaces }, 'load-balancer data plane: haproxy')
      return createHaproxyPlane({ dir: path.join(config.dataDir, 'haproxy'), logger: log, namespaces: probe.namespaces })
    }
    if (config.lbDriver === 'haproxy') log.warn(`haproxy is not usable here (${probe.reason}); using the built-in proxy`)
  }
  log.info('load-balancer data plane: built-in proxy')
  return createBuiltinPlane({ logger: log })
}
