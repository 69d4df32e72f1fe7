import type { TLoadBalancer } from '@alveary/core'
import { ZLbListener, ZLbRule, ZLbSettings, ZLbTarget, ZName } from '@alveary/core/schemas'
import { z } from 'zod'
import { CliError, EXIT } from '../errors'
import { same, show } from './compare'

/** A load balancer in an apply file: its targets name apps (of the file or the tenant), not ids. */
const ZFileTarget = ZLbTarget.omit({ appId: true }).extend({ app: ZName })
const ZFileRule = ZLbRule.extend({ targets: z.array(ZFileTarget).min(1, 'A rule needs a target').max(8, 'At most 8 targets') })
const ZFileListener = z.object({ protocol: ZLbListener.shape.protocol, port: ZLbListener.shape.port, rules: z.array(ZFileRule).min(1, 'A listener needs a rule').max(32, 'At most 32 rules') })
export const ZFileLb = z.object({
  name: ZName,
  algorithm: ZLbSettings.shape.algorithm,
  stickySeconds: ZLbSettings.shape.stickySeconds,
  drainSeconds: ZLbSettings.shape.drainSeconds,
  retryUnanswered: ZLbSettings.shape.retryUnanswered,
  listeners: z.array(ZFileListener).min(1, 'A load balancer needs a listener').max(8, 'At most 8 listeners'),
})
export type TFileLb = z.infer<typeof ZFileLb>

export interface FieldChange {
  field: string
  from: unknown
  to: unknown
}
export type LbChange =
  | { kind: 'create-lb'; name: string; lb: TFileLb }
  | { kind: 'update-lb'; name: string; id: string; lb: TFileLb; fields: FieldChange[] }
  | { kind: 'delete-lb'; name: string; id: string }

/** A load balancer as the API answered it, with app names for app ids (as a file says it). */
function asFile(lb: TLoadBalancer, appNames: Map<string, string>): TFileLb {
  return {
    name: lb.name,
    algorithm: lb.algorithm,
    stickySeconds: lb.stickySeconds,
    drainSeconds: lb.drainSeconds,
    retryUnanswered: lb.retryUnanswered,
    listeners: lb.listeners.map((l) => ({
      protocol: l.protocol,
      port: l.port,
      rules: l.rules.map((r) => ({ host: r.host, pathPrefix: r.pathPrefix, targets: r.targets.map((t) => ({ app: appNames.get(t.appId) ?? `(app ${t.appId})`, port: t.port, weight: t.weight })) })),
    })),
  }
}

/**
 * What to change so the tenant's load balancers match the file (pure, like planApply). A
 * listener the file gives no port keeps the port it has (the platform picked it), so a file
 * without ports plans nothing once applied. Targets must name apps the file has, or apps the
 * tenant keeps (not pruned).
 */
export function planLoadBalancers(
  wanted: TFileLb[],
  current: { lbs: TLoadBalancer[]; apps: { id: string; name: string }[] },
  o: { prune: boolean; fileApps: Set<string> },
): { changes: LbChange[]; unchanged: string[]; problems: string[] } {
  const changes: LbChange[] = []
  const unchanged: string[] = []
  const problems: string[] = []
  const names = wanted.map((l) => l.name)
  for (const n of names.filter((x, i) => names.indexOf(x) !== i)) problems.push(`load balancer ${n} is in the file twice`)
  const kept = new Set([...o.fileApps, ...(o.prune ? [] : current.apps.map((a) => a.name))])
  const appNames = new Map(current.apps.map((a) => [a.id, a.name]))
  const have = new Map(current.lbs.map((l) => [l.name, asFile(l, appNames)]))
  const ids = new Map(current.lbs.map((l) => [l.name, l.id]))

  for (const want of wanted) {
    const missing = [...new Set(want.listeners.flatMap((l) => l.rules.flatMap((r) => r.targets.map((t) => t.app))))].filter((a) => !kept.has(a))
    for (const a of missing) problems.push(`load balancer ${want.name} sends traffic to app ${a}, which is not in the file${o.prune ? '' : ' nor in the tenant'}`)
    const cur = have.get(want.name)
    if (!cur) {
      changes.push({ kind: 'create-lb', name: want.name, lb: want })
      continue
    }
    const lb = { ...want, listeners: want.listeners.map((l, i) => ({ ...l, port: l.port ?? (cur.listeners[i]?.protocol === l.protocol ? cur.listeners[i]!.port : undefined) })) }
    const fields = (['algorithm', 'stickySeconds', 'drainSeconds', 'retryUnanswered', 'listeners'] as const).filter((f) => !same(lb[f], cur[f])).map((f) => ({ field: f, from: cur[f], to: lb[f] }))
    if (fields.length) changes.push({ kind: 'update-lb', name: want.name, id: ids.get(want.name)!, lb, fields })
    else unchanged.push(`load balancer ${want.name}`)
  }
  if (o.prune) for (const l of current.lbs) if (!names.includes(l.name)) changes.push({ kind: 'delete-lb', name: l.name, id: l.id })
  return { changes, unchanged, problems }
}

/** The API's input for a file's load balancer, its apps named by id (apps the apply created included). */
export function lbInput(lb: TFileLb, appIds: Map<string, string>) {
  const { name: _name, ...settings } = lb
  const idOf = (app: string) => {
    const id = appIds.get(app)
    if (!id) throw new CliError(`load balancer ${lb.name}: no app ${app} in the tenant`, EXIT.conflict)
    return id
  }
  return {
    ...settings,
    listeners: lb.listeners.map((l) => ({
      ...l,
      rules: l.rules.map((r) => ({ ...r, targets: r.targets.map(({ app, ...t }) => ({ ...t, appId: idOf(app) })) })),
    })),
  }
}

const listenerText = (l: TFileLb['listeners'][number]) => `${l.protocol}:${l.port ?? 'auto'} → ${[...new Set(l.rules.flatMap((r) => r.targets.map((t) => `${t.app}/${t.port}`)))].join(', ')}`

/** Diff lines of load balancer changes (+ create, ~ change, - delete). */
export function describeLbChange(c: LbChange): string[] {
  if (c.kind === 'create-lb') return [`+ load balancer ${c.name}: ${c.lb.listeners.map(listenerText).join('; ')}`]
  if (c.kind === 'delete-lb') return [`- load balancer ${c.name}`]
  return c.fields.map((f) => {
    if (f.field !== 'listeners') return `~ load balancer ${c.name}: ${f.field} ${show(f.from)} → ${show(f.to)}`
    const [from, to] = [f.from, f.to].map((l) => (l as TFileLb['listeners']).map(listenerText).join('; '))
    // Same ports and targets: the change is in hosts, paths or weights, shown in full.
    return from === to ? `~ load balancer ${c.name}: listeners ${show(f.from)} → ${show(f.to)}` : `~ load balancer ${c.name}: listeners ${from} → ${to}`
  })
}
