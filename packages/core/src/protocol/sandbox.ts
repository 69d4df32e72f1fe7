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
 * cut, no-new-privileges, pids limit): whether the engine maps container root to an
 * unprivileged host uid. Docker does that with userns-remap (daemon-wide) or when rootless;
 * the agent reads it from the engine, it does not choose it.
 */
export const ZContainerCapability = z.object({
  engine: z.enum(['docker', 'podman']),
  /** Container root is an unprivileged uid on the host (user namespaces). */
  userns: z.boolean(),
  /** The engine itself runs as an unprivileged user. */
  rootless: z.boolean(),
})
export type TContainerCapability = z.infer<typeof ZContainerCapability>
