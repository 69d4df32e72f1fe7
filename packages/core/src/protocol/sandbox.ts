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
