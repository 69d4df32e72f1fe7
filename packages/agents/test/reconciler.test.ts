import { describe, expect, it } from 'vitest'
import { reconcile, specHash, stableStringify, type Action, type KnownInstance } from '../src/reconciler'
import { makeInstance } from './helpers'
import type { TDesiredInstance } from '@alveary/core/protocol'

/** What the supervisor's bookkeeping looks like after applying actions (the part the reconciler sees). */
function applyToKnown(known: KnownInstance[], actions: Action[]): KnownInstance[] {
  const byId = new Map(known.map((k) => [k.instanceId, { ...k }]))
  for (const a of actions) {
    if (a.type === 'remove') {
      const k = byId.get(a.instanceId)
      if (k) k.target = 'removed'
      continue
    }
    byId.set(a.instanceId, {
      instanceId: a.instanceId,
      specHash: a.specHash,
      generation: a.desired.generation,
      target: a.type === 'stop' ? 'stopped' : 'running',
    })
  }
  return [...byId.values()]
}

const types = (actions: Action[]) => actions.map((a) => `${a.type}:${a.instanceId.slice(0, 4)}`)

describe('reconcile', () => {
  const a = makeInstance({ instanceId: 'aaaaaaaa-0000-4000-8000-000000000000' })
  const b = makeInstance({ instanceId: 'bbbbbbbb-0000-4000-8000-000000000000', ordinal: 1 })

  it('starts what is desired and not known', () => {
    expect(types(reconcile([a, b], []))).toEqual(['start:aaaa', 'start:bbbb'])
  })

  it('is idempotent: the same input against the state it produced yields no actions', () => {
    const first = reconcile([a, b], [])
    const known = applyToKnown([], first)
    expect(reconcile([a, b], known)).toEqual([])
    expect(reconcile([a, b], known)).toEqual([])
  })

  it('removes known instances that left the list, once', () => {
    const known = applyToKnown([], reconcile([a, b], []))
    const actions = reconcile([a], known)
    expect(types(actions)).toEqual(['remove:bbbb'])
    expect(reconcile([a], applyToKnown(known, actions))).toEqual([])
  })

  it('stops instances listed as stopped, and starts them again when running is wanted', () => {
    const known = applyToKnown([], reconcile([a], []))
    const stopped: TDesiredInstance = { ...a, desiredState: 'stopped', generation: 2 }
    const actions = reconcile([stopped], known)
    expect(types(actions)).toEqual(['stop:aaaa'])
    const known2 = applyToKnown(known, actions)
    expect(reconcile([stopped], known2)).toEqual([])
    expect(types(reconcile([{ ...a, generation: 3 }], known2))).toEqual(['start:aaaa'])
  })

  it('ignores stopped instances it never ran', () => {
    expect(reconcile([{ ...a, desiredState: 'stopped' }], [])).toEqual([])
  })

  it('restarts when the spec changes', () => {
    const known = applyToKnown([], reconcile([a], []))
    const changed: TDesiredInstance = { ...a, generation: 2, spec: { ...a.spec, env: { COLOR: 'blue' } } }
    const actions = reconcile([changed], known)
    expect(actions).toMatchObject([{ type: 'restart', reason: 'spec-changed', instanceId: a.instanceId }])
    expect(reconcile([changed], applyToKnown(known, actions))).toEqual([])
  })

  it('does not restart on a generation-only bump', () => {
    const known = applyToKnown([], reconcile([a], []))
    const bumped: TDesiredInstance = { ...a, generation: 7 }
    const actions = reconcile([bumped], known)
    expect(actions.map((x) => x.type)).toEqual(['leave'])
    expect(reconcile([bumped], applyToKnown(known, actions))).toEqual([])
  })

  it('confirms adopted instances with the same spec and restarts them on another spec', () => {
    const adopted: KnownInstance = { instanceId: a.instanceId, specHash: specHash(a.spec), generation: 1, target: null }
    expect(reconcile([a], [adopted]).map((x) => x.type)).toEqual(['leave'])
    const other = { ...a, spec: { ...a.spec, args: ['-e', 'other'] } }
    expect(reconcile([other], [adopted]).map((x) => x.type)).toEqual(['restart'])
    expect(reconcile([], [adopted]).map((x) => x.type)).toEqual(['remove'])
  })

  it('hashes specs independently of key order', () => {
    const s1 = { ...a.spec, env: { A: '1', B: '2' } }
    const s2 = { ...a.spec, env: { B: '2', A: '1' } }
    expect(specHash(s1)).toBe(specHash(s2))
    expect(stableStringify({ b: 1, a: [{ d: 1, c: 2 }] })).toBe('{"a":[{"c":2,"d":1}],"b":1}')
    expect(specHash({ ...s1, args: ['x', 'y'] })).not.toBe(specHash({ ...s1, args: ['y', 'x'] }))
  })
})
