/** The environment of an instance's process: the platform's variables and nothing else of the agent's. */
import { innerPorts, type TDesiredInstance } from '@alveary/core/protocol'
import { volumeEnvName, type HostMount } from '../../volumes/store'
import { SANDBOX_HOME } from '../../sandbox'

/** Env var suffix for a port name: `admin-ui` -> `ADMIN_UI`. */
export function portEnvName(name: string): string {
  return `PORT_${name.toUpperCase().replace(/[^A-Z0-9_]/g, '_')}`
}

/**
 * The ports an instance listens on: on a tenant network, stable inner ports of its own
 * namespace (network/names.ts, the same wherever it runs); on host networking, its host ports.
 */
export function listenPorts(instance: TDesiredInstance): number[] {
  return instance.interfaces.length ? innerPorts(instance.spec.ports) : instance.spec.ports.map((p) => p.hostPort)
}

/** The child's whole environment: nothing else of the agent's env leaks into tenants' processes. */
export function buildEnv(instance: TDesiredInstance, baseEnv: Record<string, string>, mounts: readonly HostMount[] = [], sandboxed = false): Record<string, string> {
  // In a sandbox HOME is the instance's private work directory, the only writable place besides /tmp and volumes.
  const env: Record<string, string> = { ...baseEnv, ...(sandboxed && { HOME: SANDBOX_HOME, TMPDIR: '/tmp' }), ...instance.spec.env }
  const ports = listenPorts(instance)
  if (ports.length) env.PORT = String(ports[0])
  instance.spec.ports.forEach((p, k) => (env[portEnvName(p.name)] = String(ports[k])))
  if (instance.interfaces[0]) env.ALVEARY_IP = instance.interfaces[0].ip
  env.ALVEARY_INSTANCE_ID = instance.instanceId
  env.ALVEARY_APP = instance.appName
  env.ALVEARY_TENANT_ID = instance.tenantId
  env.ALVEARY_ORDINAL = String(instance.ordinal)
  // Without a mount namespace the volume is found where it is on the host.
  for (const m of mounts) env[volumeEnvName(m.name)] = sandboxed ? m.path : m.hostPath
  return env
}

export function defaultBaseEnv(): Record<string, string> {
  const env: Record<string, string> = {}
  if (process.env.PATH !== undefined) env.PATH = process.env.PATH
  if (process.env.HOME !== undefined) env.HOME = process.env.HOME
  return env
}
