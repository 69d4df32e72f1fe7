/** Everything a container gets from the desired instance: labels, env, ports, limits. Pure. */
import type Docker from 'dockerode'
import { innerPorts, type TDesiredInstance } from '@alveary/core/protocol'
import { specHash } from '../../reconciler'
import { volumeEnvName, type HostMount } from '../../volumes/store'
import { portEnvName } from '../process/env'
import { USERNS_AUTO } from './capability'

export const LABELS = {
  managed: 'alveary.managed',
  tenant: 'alveary.tenant',
  app: 'alveary.app',
  instance: 'alveary.instance',
  generation: 'alveary.generation',
  specHash: 'alveary.spec-hash',
  node: 'alveary.node',
  /** Lets an agent that lost its state files still stop the container gracefully. */
  stopGrace: 'alveary.stop-grace',
} as const

export const containerName = (instanceId: string) => `alveary-${instanceId}`

/**
 * Host address ports are published on: all IPv4 interfaces. Podman is sent "" (all interfaces)
 * instead: netavark 1.4 (Podman 4.3) turns an explicit 0.0.0.0 into a DNAT rule for destination
 * 0.0.0.0/32, which matches no traffic, so connections hang on conmon's port reservation.
 */
export function publishHostIp(engine: 'docker' | 'podman'): string {
  return engine === 'podman' ? '' : '0.0.0.0'
}

/**
 * Capabilities a container keeps: Docker's default set without NET_RAW (raw packets, ARP
 * spoofing), MKNOD, AUDIT_WRITE, SYS_CHROOT, SETFCAP and SETPCAP. Enough for images that start
 * as root, chown their files and drop to a user; every other capability is dropped.
 */
export const CONTAINER_CAPS = ['CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'NET_BIND_SERVICE', 'SETGID', 'SETUID'] as const

/** Processes and threads per container unless the agent says otherwise (--sandbox-pids-max). */
export const DEFAULT_PIDS_LIMIT = 1024

export interface ContainerPlacement {
  /** Where published ports listen (publishHostIp). */
  hostIp?: string
  /**
   * The instance's tenant network: its namespace, joined by path (Podman's `ns:` mode) or, for
   * engines without that (Docker), adopted from the container after it starts (`NetworkMode:
   * none`, then the overlay moves the instance's name onto the container's namespace).
   */
  network?: { netns: string; join: 'path' | 'pid'; resolvConf?: string }
  mounts?: readonly HostMount[]
  /** Processes and threads a container may have (a fork bomb stops there): the default, and the most an app gets. */
  pidsLimit?: number
  /** A user namespace of its own (Podman, USERNS_AUTO): container root is an unprivileged host uid. */
  userns?: boolean
}

/** Everything the container gets from the spec; pure, for tests. */
export function containerConfig(instance: TDesiredInstance, nodeName: string, placement: ContainerPlacement = {}): Docker.ContainerCreateOptions {
  const { spec } = instance
  const { hostIp = '0.0.0.0', mounts = [], userns = false } = placement
  // On a tenant network the ports are the stable inner ports and the platform publishes them (nftables), not the engine.
  const net = instance.interfaces.length ? placement.network : undefined
  const netns = net?.netns
  const inner = innerPorts(spec.ports)
  const ports = spec.ports.map((p, k) => ({ name: p.name, host: p.hostPort, container: netns ? inner[k]! : (p.containerPort ?? p.hostPort) }))
  // Inside the container the app listens on the container ports.
  const env: Record<string, string> = { ...spec.env }
  const [first] = ports
  if (first) env.PORT = String(first.container)
  for (const p of ports) env[portEnvName(p.name)] = String(p.container)
  env.ALVEARY_INSTANCE_ID = instance.instanceId
  env.ALVEARY_APP = instance.appName
  env.ALVEARY_TENANT_ID = instance.tenantId
  env.ALVEARY_ORDINAL = String(instance.ordinal)
  if (netns) env.ALVEARY_IP = instance.interfaces[0]!.ip
  for (const m of mounts) env[volumeEnvName(m.name)] = m.path

  const exposed: Record<string, object> = {}
  const bindings: Record<string, Array<{ HostIp: string; HostPort: string }>> = {}
  for (const p of ports) {
    const key = `${p.container}/tcp`
    exposed[key] = {}
    if (!netns) (bindings[key] ??= []).push({ HostIp: hostIp, HostPort: String(p.host) })
  }
  // command set: Cmd = [command, ...args]; only args: Cmd = args; neither: the image's default.
  const cmd = spec.command ? [spec.command, ...spec.args] : spec.args.length ? spec.args : undefined
  return {
    name: containerName(instance.instanceId),
    Image: spec.image ?? undefined,
    ...(cmd ? { Cmd: cmd } : {}),
    Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
    Labels: {
      [LABELS.managed]: 'true',
      [LABELS.tenant]: instance.tenantId,
      [LABELS.app]: instance.appId,
      [LABELS.instance]: instance.instanceId,
      [LABELS.generation]: String(instance.generation),
      [LABELS.specHash]: specHash(spec),
      [LABELS.node]: nodeName,
      [LABELS.stopGrace]: String(spec.stopGraceSeconds),
    },
    ExposedPorts: exposed,
    Tty: false,
    HostConfig: {
      PortBindings: bindings,
      // The engine joins the namespace the overlay prepared (or gets none and is adopted), so our IPAM stays authoritative.
      ...(net && { NetworkMode: net.join === 'path' ? `ns:${net.netns}` : 'none' }),
      // Volumes: the agent's folders (local, or on shared storage), never paths from tenant input;
      // and the tenant network's resolver (its names) in place of the engine's.
      // In a user namespace the volume's files are given to the container's user (host ids of its
      // range) at every start (`U`): its ids may differ from the last start's, on this node or another.
      ...((mounts.length || net?.resolvConf) && { Binds: [...mounts.map((m) => `${m.hostPath}:${m.path}:${userns ? 'rw,U' : 'rw'}`), ...(net?.resolvConf ? [`${net.resolvConf}:/etc/resolv.conf:ro`] : [])] }),
      ...(userns && { UsernsMode: USERNS_AUTO }),
      NanoCpus: spec.cpuMillis * 1_000_000,
      Memory: spec.memoryMb * 1024 * 1024,
      // Swap is no way around the memory limit.
      MemorySwap: spec.memoryMb * 1024 * 1024,
      // Hardening: nothing in the spec can ask for more. Never privileged, a minimal capability
      // set, no setuid escalation, bounded processes, its own PID and IPC namespaces (the
      // network is its own or the tenant's, never the host's: NetworkMode is ns:/none/default).
      Privileged: false,
      CapDrop: ['ALL'],
      CapAdd: [...CONTAINER_CAPS],
      SecurityOpt: ['no-new-privileges'],
      PidsLimit: Math.min(spec.pidsMax ?? Infinity, placement.pidsLimit ?? DEFAULT_PIDS_LIMIT),
      // An app's option: the image's files cannot be changed; /tmp is memory (charged to its limit), volumes stay writable.
      ...(spec.readOnlyRootfs && { ReadonlyRootfs: true, Tmpfs: { '/tmp': 'rw,nosuid,nodev,mode=1777' } }),
      PidMode: '',
      IpcMode: 'private',
      // An init as PID 1 forwards SIGTERM (busybox or a shell as PID 1 would ignore it) and reaps zombies.
      Init: true,
      RestartPolicy: { Name: 'no' },
    },
  }
}
