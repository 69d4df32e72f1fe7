/** The environment of an instance's process: the platform's variables and nothing else of the agent's. */
import type { TDesiredInstance } from '@alveary/core/protocol'
import { volumeEnvName, type HostMount } from '../../volumes/store'

/** Env var suffix for a port name: `admin-ui` -> `ADMIN_UI`. */
export function portEnvName(name: string): string {
  return `PORT_${name.toUpperCase().replace(/[^A-Z0-9_]/g, '_')}`
}

/** The child's whole environment: nothing else of the agent's env leaks into tenants' processes. */
export function buildEnv(instance: TDesiredInstance, baseEnv: Record<string, string>, mounts: readonly HostMount[] = []): Record<string, string> {
  const env: Record<string, string> = { ...baseEnv, ...instance.spec.env }
  const [first] = instance.spec.ports
  if (first) env.PORT = String(first.hostPort)
  for (const p of instance.spec.ports) env[portEnvName(p.name)] = String(p.hostPort)
  env.ALVEARY_INSTANCE_ID = instance.instanceId
  env.ALVEARY_APP = instance.appName
  env.ALVEARY_TENANT_ID = instance.tenantId
  env.ALVEARY_ORDINAL = String(instance.ordinal)
  // Without a mount namespace the volume is found where it is on the host.
  for (const m of mounts) env[volumeEnvName(m.name)] = m.hostPath
  return env
}

export function defaultBaseEnv(): Record<string, string> {
  const env: Record<string, string> = {}
  if (process.env.PATH !== undefined) env.PATH = process.env.PATH
  if (process.env.HOME !== undefined) env.HOME = process.env.HOME
  return env
}
