/**
 * The pure diff between what the server wants on this node and what the agent is already
 * working towards. No I/O, no clock: the supervisor executes the actions.
 */
import { createHash } from 'node:crypto'
import type { TDesiredInstance } from '@alveary/core/protocol'

/** JSON with object keys sorted at every level, so equal specs always serialize equally. */
export function stableStringify(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null'
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(',')}]`
  const obj = value as Record<string, unknown>
  const keys = Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort()
  return `{${keys.map((k) => `${JSON.stringify(k)}:${stableStringify(obj[k])}`).join(',')}}`
}

export function specHash(spec: TDesiredInstance['spec']): string {
  return createHash('sha256').update(stableStringify(spec)).digest('hex').slice(0, 32)
}

/**
 * What a worker is working towards. `target` null = re-adopted from a previous agent and
 * not yet confirmed by a desired state; `removed` = being stopped because it left the list.
 */
export interface KnownInstance {
  instanceId: string
  specHash: string
  generation: number
  target: 'running' | 'stopped' | 'removed' | null
}

export type Action =
  /** Not known (or known stopped): run it. */
  | { type: 'start'; instanceId: string; desired: TDesiredInstance; specHash: string }
  /** Running with another spec: replace the process. */
  | { type: 'restart'; instanceId: string; desired: TDesiredInstance; specHash: string; reason: 'spec-changed' }
  /** Listed with desiredState stopped: stop it but keep reporting it. */
  | { type: 'stop'; instanceId: string; desired: TDesiredInstance; specHash: string; reason: 'desired-stopped' }
  /** No longer listed: stop it, then forget it. */
  | { type: 'remove'; instanceId: string; reason: 'not-desired' }
  /** Keep the process as is, only take the new metadata (generation bump, adopted instance confirmed). */
  | { type: 'leave'; instanceId: string; desired: TDesiredInstance; specHash: string }

/**
 * Returns only what must change: reconciling the same input against the state it produced
 * yields no actions, and a generation bump with an identical spec never restarts anything.
 */
export function reconcile(desired: readonly TDesiredInstance[], known: readonly KnownInstance[]): Action[] {
  const actions: Action[] = []
  const byId = new Map(known.map((k) => [k.instanceId, k]))
  const wanted = new Set<string>()
  for (const d of desired) {
    if (wanted.has(d.instanceId)) continue // a duplicate entry: the first one wins
    wanted.add(d.instanceId)
    const hash = specHash(d.spec)
    const k = byId.get(d.instanceId)
    const sameMeta = k !== undefined && k.specHash === hash && k.generation === d.generation
    if (d.desiredState === 'stopped') {
      if (!k) continue // nothing runs, nothing to report
      if (k.target === 'stopped' && sameMeta) continue
      actions.push({ type: 'stop', instanceId: d.instanceId, desired: d, specHash: hash, reason: 'desired-stopped' })
      continue
    }
    if (!k || k.target === 'stopped' || k.target === 'removed') {
      actions.push({ type: 'start', instanceId: d.instanceId, desired: d, specHash: hash })
    } else if (k.specHash !== hash) {
      actions.push({ type: 'restart', instanceId: d.instanceId, desired: d, specHash: hash, reason: 'spec-changed' })
    } else if (k.target === null || k.generation !== d.generation) {
      actions.push({ type: 'leave', instanceId: d.instanceId, desired: d, specHash: hash })
    }
  }
  for (const k of known) {
    if (!wanted.has(k.instanceId) && k.target !== 'removed') {
      actions.push({ type: 'remove', instanceId: k.instanceId, reason: 'not-desired' })
    }
  }
  return actions
}
