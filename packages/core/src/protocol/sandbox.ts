/** What a node can enforce around process instances (see the agent's sandbox/). */
import { z } from 'zod'
import { zText } from './limits'

export const ZSandboxCapability = z.object({
  /**
   * sandboxed: every process instance runs in its own namespaces as its tenant's uid, with
   * cgroup limits. unsandboxed: they run as plain processes of the agent; only tenants an
   * operator trusts are placed here.
   */
  mode: z.enum(['sandboxed', 'unsandboxed']),
  tool: z.enum(['bwrap']).nullable(),
  cgroups: z.enum(['v1', 'v2']).nullable(),
  /** Limits enforced per instance. */
  limits: z.array(z.enum(['memory', 'cpu', 'pids'])).max(3),
  /**
   * Sandboxed instances without a tenant network: `own` network namespace (the node's loopback
   * and services out of reach, published ports forwarded) or the `node`'s. Absent: not sandboxed,
   * or an agent from before.
   */
  network: z.enum(['own', 'node']).optional(),
  /** Why the node cannot sandbox (unsandboxed). */
  reason: zText(300).nullable(),
})
export type TSandboxCapability = z.infer<typeof ZSandboxCapability>

/**
 * What isolates containers here beyond the agent's own hardening (no privileges, capabilities
 * cut, no-new-privileges, pids limit): whether container root is an unprivileged host uid. Docker
 * does that daemon-wide (userns-remap) or when rootless, which the agent reads from the engine; on
 * rootful Podman the agent asks for a user namespace per container where the engine can give one.
 */
export const ZContainerCapability = z.object({
  engine: z.enum(['docker', 'podman']),
  /** Container root is an unprivileged uid on the host (user namespaces). */
  userns: z.boolean(),
  /**
   * Who maps it: `auto` the agent gives every container a user namespace of its own (Podman's
   * --userns=auto, ids from the `containers` range of /etc/subuid and /etc/subgid); `engine` the
   * engine maps all containers itself. Absent: no user namespaces, or an agent from before.
   */
  usernsMode: z.enum(['auto', 'engine']).optional(),
  /** The engine itself runs as an unprivileged user. */
  rootless: z.boolean(),
  /** Why containers run without user namespaces (the engine's answer where it gave one). */
  reason: zText(300).optional(),
})
export type TContainerCapability = z.infer<typeof ZContainerCapability>
