import type { TAppDetail, TNetwork } from '@alveary/core'
import { describe, expect, it } from 'vitest'
import { describePlan, planApply, ZApplyFile } from './plan'

const spec = { command: 'node', args: ['server.js'], cpuMillis: 10, memoryMb: 16 }
const file = (o: object) => ZApplyFile.parse(o)
// What the API answers for an app deployed with `spec`: every field filled in, image null.
const current = (name: string, replicas: number, s = spec, extra: Partial<TAppDetail> = {}) =>
  ({ id: `id-${name}`, name, replicas, deleting: false, network: null, spec: { ...file({ apps: [{ name, replicas, spec: s }] }).apps[0]!.spec, image: null }, ...extra }) as unknown as TAppDetail
const net = (name: string, cidr: string, isDefault = false) => ({ id: `net-${name}`, name, cidr, isDefault }) as TNetwork

describe('apply plan', () => {
  it('creates what is missing, changes what differs, leaves the rest', () => {
    const plan = planApply(
      file({ networks: [{ name: 'back' }], apps: [{ name: 'web', replicas: 3, spec: { ...spec, env: { V: '2' } } }, { name: 'db', replicas: 1, spec }, { name: 'new', replicas: 1, spec }] }),
      { apps: [current('web', 2), current('db', 1)], networks: [net('default', '100.64.0.0/24', true)] },
      { prune: false },
    )
    expect(plan.changes.map((c) => c.kind)).toEqual(['create-network', 'create-app', 'update-app', 'scale-app'])
    expect(describePlan(plan)).toBe(
      ['+ network back', '+ app new: 1 replicas of node server.js', '~ app web: spec.env {} → {"V":"2"}', '~ app web: replicas 2 → 3', '  app db: unchanged', ''].join('\n'),
    )
  })

  it('plans nothing once applied: defaults and nulls are not differences', () => {
    const plan = planApply(file({ apps: [{ name: 'web', replicas: 2, spec }] }), { apps: [current('web', 2)], networks: [] }, { prune: true })
    expect(plan.changes).toEqual([])
  })

  it('prunes only with --prune, never the default network, deletions last', () => {
    const state = { apps: [current('web', 1), current('old', 1)], networks: [net('default', '100.64.0.0/24', true), net('gone', '100.64.1.0/24')] }
    const f = file({ apps: [{ name: 'web', replicas: 1, spec }] })
    expect(planApply(f, state, { prune: false }).changes).toEqual([])
    expect(planApply(f, state, { prune: true }).changes.map((c) => `${c.kind} ${'name' in c ? c.name : ''}`)).toEqual(['delete-app old', 'delete-network gone'])
  })

  it('refuses what cannot converge', () => {
    const plan = planApply(
      file({ networks: [{ name: 'back', cidr: '100.64.9.0/24' }], apps: [{ name: 'web', replicas: 1, spec, network: 'back' }, { name: 'web', replicas: 2, spec }] }),
      { apps: [current('web', 1)], networks: [net('back', '100.64.8.0/24')] },
      { prune: false },
    )
    expect(plan.problems).toEqual([
      'app web is in the file twice',
      "network back is 100.64.8.0/24, the file says 100.64.9.0/24: a network's CIDR cannot change (delete it first)",
      "app web is on host networking, the file says back: an app's network cannot change",
    ])
  })
})
