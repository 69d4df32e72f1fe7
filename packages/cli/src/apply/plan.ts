import type { TAppDetail, TLoadBalancer, TNetwork } from '@alveary/core'
import { ZAppSpec, ZCreateAppInput, ZName } from '@alveary/core/schemas'
import { z } from 'zod'
import { same, show } from './compare'
import { describeLbChange, planLoadBalancers, ZFileLb, type FieldChange, type LbChange } from './load-balancers'

/**
 * An apply file: the networks, apps (with their volumes) and load balancers a tenant should
 * have (YAML or JSON). Load balancers name their target apps by name.
 */
export const ZApplyFile = z.object({
  networks: z.array(z.object({ name: ZName, cidr: z.string().max(18).optional() })).max(100).default([]),
  apps: z.array(ZCreateAppInput).max(500).default([]),
  loadBalancers: z.array(ZFileLb).max(100).default([]),
})
export type TApplyFile = z.infer<typeof ZApplyFile>
export type { FieldChange }

export type Change =
  | { kind: 'create-network'; name: string; cidr?: string }
  | { kind: 'delete-network'; name: string; id: string }
  | { kind: 'create-app'; app: z.infer<typeof ZCreateAppInput> }
  | { kind: 'update-app'; name: string; id: string; spec: z.infer<typeof ZAppSpec>; fields: FieldChange[] }
  | { kind: 'scale-app'; name: string; id: string; from: number; to: number }
  | { kind: 'delete-app'; name: string; id: string }
  | LbChange

export interface Plan {
  changes: Change[]
  unchanged: string[]
  /** What apply cannot converge (it stops before changing anything). */
  problems: string[]
}

const volumesText = (v: { name: string; sizeMb: number; mountPath: string }[]) => (v.length ? v.map((x) => `${x.name} (${x.sizeMb} MiB at ${x.mountPath})`).join(', ') : 'none')

/**
 * What to change so the tenant matches the file: a pure function of the file and what the
 * API answered (the same input twice gives the same plan; an applied plan plans nothing).
 * Specs are compared field by field after the API's own defaults are filled in, so a file
 * that leaves a field out does not undo nothing. With `prune`, what the file leaves out is deleted.
 */
export function planApply(file: TApplyFile, current: { apps: TAppDetail[]; networks: TNetwork[]; loadBalancers?: TLoadBalancer[] }, opts: { prune: boolean }): Plan {
  const changes: Change[] = []
  const unchanged: string[] = []
  const problems: string[] = []
  const dup = (names: string[]) => names.filter((n, i) => names.indexOf(n) !== i)
  for (const n of dup(file.apps.map((a) => a.name))) problems.push(`app ${n} is in the file twice`)
  for (const n of dup(file.networks.map((x) => x.name))) problems.push(`network ${n} is in the file twice`)

  const nets = new Map(current.networks.map((n) => [n.name, n]))
  for (const want of file.networks) {
    const have = nets.get(want.name)
    if (!have) changes.push({ kind: 'create-network', name: want.name, ...(want.cidr && { cidr: want.cidr }) })
    else if (want.cidr && want.cidr !== have.cidr) problems.push(`network ${want.name} is ${have.cidr}, the file says ${want.cidr}: a network's CIDR cannot change (delete it first)`)
    else unchanged.push(`network ${want.name}`)
  }

  const apps = new Map(current.apps.map((a) => [a.name, a]))
  for (const want of file.apps) {
    const have = apps.get(want.name)
    if (!have) {
      changes.push({ kind: 'create-app', app: want })
      continue
    }
    if (want.network !== undefined && (want.network ?? null) !== (have.network?.name ?? null)) {
      problems.push(`app ${want.name} is on ${have.network?.name ?? 'host networking'}, the file says ${want.network ?? 'host networking'}: an app's network cannot change`)
      continue
    }
    // Volumes are set when an app is created (each replica keeps its own data).
    if (!same(want.spec.volumes, have.spec.volumes)) {
      problems.push(`app ${want.name} has volumes ${volumesText(have.spec.volumes)}, the file says ${volumesText(want.spec.volumes)}: an app's volumes cannot change (delete the app first)`)
      continue
    }
    const fields = Object.entries(want.spec)
      .filter(([k, v]) => !same(v, (have.spec as Record<string, unknown>)[k]))
      .map(([field, to]) => ({ field: `spec.${field}`, from: (have.spec as Record<string, unknown>)[field] ?? null, to }))
    if (fields.length) changes.push({ kind: 'update-app', name: want.name, id: have.id, spec: want.spec, fields })
    if (want.replicas !== have.replicas) changes.push({ kind: 'scale-app', name: want.name, id: have.id, from: have.replicas, to: want.replicas })
    if (!fields.length && want.replicas === have.replicas) unchanged.push(`app ${want.name}`)
  }

  if (opts.prune) {
    const wantedApps = new Set(file.apps.map((a) => a.name))
    for (const a of current.apps) if (!wantedApps.has(a.name) && !a.deleting) changes.push({ kind: 'delete-app', name: a.name, id: a.id })
    const wantedNets = new Set(file.networks.map((n) => n.name))
    for (const n of current.networks) if (!wantedNets.has(n.name) && !n.isDefault) changes.push({ kind: 'delete-network', name: n.name, id: n.id })
  }
  const lbs = planLoadBalancers(file.loadBalancers, { lbs: current.loadBalancers ?? [], apps: current.apps }, { prune: opts.prune, fileApps: new Set(file.apps.map((a) => a.name)) })
  changes.push(...lbs.changes)
  unchanged.push(...lbs.unchanged)
  problems.push(...lbs.problems)
  // Networks before the apps that join them, apps before the load balancers that send them
  // traffic; deletions the other way round.
  const order: Record<Change['kind'], number> = {
    'create-network': 0,
    'create-app': 1,
    'update-app': 2,
    'scale-app': 3,
    'create-lb': 4,
    'update-lb': 5,
    'delete-lb': 6,
    'delete-app': 7,
    'delete-network': 8,
  }
  changes.sort((a, b) => order[a.kind] - order[b.kind])
  return { changes, unchanged, problems }
}

/** The plan as a diff for people: + create, ~ change, - delete. */
export function describePlan(plan: Plan): string {
  const lines: string[] = []
  for (const c of plan.changes) {
    if (c.kind === 'create-network') lines.push(`+ network ${c.name}${c.cidr ? ` (${c.cidr})` : ''}`)
    if (c.kind === 'delete-network') lines.push(`- network ${c.name}`)
    if (c.kind === 'create-app')
      lines.push(`+ app ${c.app.name}: ${c.app.replicas} replica${c.app.replicas === 1 ? '' : 's'} of ${c.app.spec.image ?? [c.app.spec.command, ...c.app.spec.args].join(' ')}${c.app.spec.volumes.length ? `, volumes ${volumesText(c.app.spec.volumes)}` : ''}`)
    if (c.kind === 'delete-app') lines.push(`- app ${c.name}`)
    if (c.kind === 'scale-app') lines.push(`~ app ${c.name}: replicas ${c.from} → ${c.to}`)
    if (c.kind === 'update-app') for (const f of c.fields) lines.push(`~ app ${c.name}: ${f.field} ${show(f.from)} → ${show(f.to)}`)
    if (c.kind === 'create-lb' || c.kind === 'update-lb' || c.kind === 'delete-lb') lines.push(...describeLbChange(c))
  }
  for (const u of plan.unchanged) lines.push(`  ${u}: unchanged`)
  for (const p of plan.problems) lines.push(`! ${p}`)
  return lines.length ? `${lines.join('\n')}\n` : 'Nothing in the file.\n'
}
