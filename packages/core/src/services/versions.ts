/**
 * Versions of what a client may update conditionally (REST: ETag / If-Match). A version is
 * what the owner asked for, not what instances are doing; the check runs inside the write's
 * transaction with the row locked, so two writers that read the same version cannot both win.
 */
import { CoreError } from '../errors'

/** An app's version: a spec change always makes a new revision, so the revision stands for the spec. */
export const appVersion = (a: { revision: number; replicas: number; deleting: boolean }) => ({ revision: a.revision, replicas: a.replicas, deleting: a.deleting })
export type TAppVersion = ReturnType<typeof appVersion>

/** A load balancer's version: its settings, not its provisioning state. */
export const lbVersion = (lb: { name: string; algorithm: string; stickySeconds: number | null; drainSeconds: number; retryUnanswered: boolean; listeners: { protocol: string; port: number; rules: unknown }[] }) => ({
  name: lb.name,
  algorithm: lb.algorithm,
  stickySeconds: lb.stickySeconds,
  drainSeconds: lb.drainSeconds,
  retryUnanswered: lb.retryUnanswered,
  listeners: lb.listeners.map((l) => ({ protocol: l.protocol, port: l.port, rules: l.rules })),
})
export type TLbVersion = ReturnType<typeof lbVersion>

/** Says whether the write may go ahead from the current version (false: someone changed it since the caller read it). */
export type Precondition<V> = (current: V) => boolean

export function checkPrecondition<V>(precondition: Precondition<V> | undefined, current: V): void {
  if (precondition && !precondition(current))
    throw new CoreError('PRECONDITION_FAILED', 'The resource changed since you read it (If-Match does not match its ETag): read it again and retry')
}
