import type { TAppDetail, TLoadBalancer, TNetwork } from '@alveary/core'
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
      ['+ network back', '+ app new: 1 replica of node server.js', '~ app web: spec.env {} → {"V":"2"}', '~ app web: replicas 2 → 3', '  app db: unchanged', ''].join('\n'),
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

  const lb = (name: string, o: Partial<TLoadBalancer> = {}) =>
    ({ id: `lb-${name}`, name, algorithm: 'roundrobin', stickySeconds: null, drainSeconds: 10, retryUnanswered: false, listeners: [{ protocol: 'http', port: 30080, rules: [{ host: null, pathPrefix: null, targets: [{ appId: 'id-web', port: 'http', weight: 100 }] }] }], ...o }) as TLoadBalancer
  const front = { name: 'front', listeners: [{ protocol: 'http', rules: [{ targets: [{ app: 'web', port: 'http' }] }] }] }

  it('plans load balancers by app name: created after their apps, a port the platform picked is kept, deleted before their apps', () => {
    const created = planApply(file({ apps: [{ name: 'web', replicas: 1, spec }], loadBalancers: [front] }), { apps: [], networks: [] }, { prune: false })
    expect(created.changes.map((c) => c.kind)).toEqual(['create-app', 'create-lb'])
    expect(describePlan(created)).toContain('+ load balancer front: http:auto → web/http')

    const state = { apps: [current('web', 1)], networks: [], loadBalancers: [lb('front')] }
    expect(planApply(file({ apps: [{ name: 'web', replicas: 1, spec }], loadBalancers: [front] }), state, { prune: true }).changes).toEqual([])
    const changed = planApply(file({ apps: [{ name: 'web', replicas: 1, spec }], loadBalancers: [{ ...front, algorithm: 'leastconn' }] }), state, { prune: false })
    expect(describePlan(changed)).toBe('~ load balancer front: algorithm roundrobin → leastconn\n  app web: unchanged\n')
    const retrying = planApply(file({ apps: [{ name: 'web', replicas: 1, spec }], loadBalancers: [{ ...front, retryUnanswered: true }] }), state, { prune: false })
    expect(describePlan(retrying)).toBe('~ load balancer front: retryUnanswered false → true\n  app web: unchanged\n')
    const reweighted = planApply(file({ apps: [{ name: 'web', replicas: 1, spec }], loadBalancers: [{ name: 'front', listeners: [{ protocol: 'http', rules: [{ targets: [{ app: 'web', port: 'http', weight: 5 }] }] }] }] }), state, { prune: false })
    expect(describePlan(reweighted)).toMatch(/^~ load balancer front: listeners .*"weight":100.* → .*"weight":5/)
    const pruned = planApply(file({}), { ...state, loadBalancers: [lb('front')] }, { prune: true })
    expect(pruned.changes.map((c) => c.kind)).toEqual(['delete-lb', 'delete-app'])
  })

  it('refuses load balancers whose apps are neither in the file nor kept, and volumes that change', () => {
    const orphan = planApply(file({ loadBalancers: [front] }), { apps: [current('web', 1)], networks: [] }, { prune: true })
    expect(orphan.problems).toEqual(['load balancer front sends traffic to app web, which is not in the file'])
    const vol = { name: 'data', sizeMb: 64, mountPath: '/data' }
    const created = planApply(file({ apps: [{ name: 'db', replicas: 1, spec: { ...spec, volumes: [vol] } }] }), { apps: [], networks: [] }, { prune: false })
    expect(describePlan(created)).toContain('+ app db: 1 replica of node server.js, volumes data (64 MiB at /data)')
    const have = current('db', 1, { ...spec, volumes: [vol] } as typeof spec)
    expect(planApply(file({ apps: [{ name: 'db', replicas: 1, spec: { ...spec, volumes: [vol] } }] }), { apps: [have], networks: [] }, { prune: false }).changes).toEqual([])
    expect(planApply(file({ apps: [{ name: 'db', replicas: 1, spec: { ...spec, volumes: [{ ...vol, sizeMb: 128 }] } }] }), { apps: [have], networks: [] }, { prune: false }).problems).toEqual([
      "app db has volumes data (64 MiB at /data), the file says data (128 MiB at /data): an app's volumes cannot change (delete the app first)",
    ])
  })
})
