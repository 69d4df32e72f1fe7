/** What the agent advertises about process isolation, from --sandbox and what the probe found. */
import { join } from 'node:path'
import type { Logger } from 'pino'
import type { TSandboxCapability } from '@alveary/core/protocol'
import type { AgentConfig } from '../config'
import { defaultPrefix } from '../network/names'
import { probeSandbox, type Sandbox } from './index'

export const unsandboxed = (reason: string): TSandboxCapability => ({ mode: 'unsandboxed', tool: null, cgroups: null, limits: [], reason: reason.slice(0, 300) })

/** Throws (a configuration error) only for `--sandbox on` on a node that cannot. */
export async function detectSandbox(config: AgentConfig, log: Logger): Promise<{ sandbox: Sandbox | null; capability: TSandboxCapability }> {
  if (config.sandbox === 'off') {
    log.warn('sandbox: off (--sandbox off); process instances run as the agent, unconfined: only trusted tenants are placed here')
    return { sandbox: null, capability: unsandboxed('turned off on this node (--sandbox off)') }
  }
  const probe = await probeSandbox({
    group: `alveary-${config.networkPrefix ?? defaultPrefix(config.dataDir)}`,
    pidsMax: config.sandboxPidsMax,
    hide: [config.dataDir, ...config.sandboxHide],
    etcDir: join(config.dataDir, 'sandbox-etc'),
  })
  if (!probe.ok) {
    if (config.sandbox === 'on') throw new Error(`--sandbox on: ${probe.reason}`)
    log.warn(`sandbox: unavailable (${probe.reason}); process instances run unconfined: only trusted tenants are placed here`)
    return { sandbox: null, capability: unsandboxed(probe.reason) }
  }
  const c = probe.sandbox.capability
  log.info({ cgroups: c.cgroups, limits: c.limits }, 'sandbox: process instances run in bwrap sandboxes as their tenant’s uid')
  return { sandbox: probe.sandbox, capability: c }
}
