/**
 * Which instance sits in which pre-provisioned server slot of each backend, and the runtime
 * API commands that move HAProxy from one assignment to the next. Pure. An instance keeps
 * its slot while it is listed (its connections and stickiness stay with it); a slot freed
 * by one instance is reused by the next.
 */
import type { TDesiredLb, TLbServer } from '@alveary/core/protocol'
import { backendId, FREE_SLOT, slotCount, type BackendSlots, type Slot } from './config'

export interface Assignment {
  /** Per backend: the instance in each slot (null: free). */
  members: Map<string, (string | null)[]>
  /** Per backend: the state of each slot. */
  backends: Map<string, BackendSlots>
}

export const emptyAssignment = (): Assignment => ({ members: new Map(), backends: new Map() })

/** Where HAProxy reaches a server from: the namespace of its tenant network (null: the node's). */
export type NamespaceOf = (s: TLbServer) => string | null

const slotOf = (s: TLbServer, ns: string | null): Slot => ({ address: s.address, port: s.port, weight: s.weight, state: s.state === 'down' ? 'maint' : s.state, ns })

/**
 * Slots are grouped by namespace (a slot's namespace never changes, see Slot.ns): an instance
 * takes a free slot of its namespace's group, and a group grows (with headroom) only when its
 * members no longer fit. Slots of namespaces that no longer exist are dropped (HAProxy could
 * not load them), which, like growing, changes the structure.
 */
export function assign(prev: Assignment, lbs: readonly TDesiredLb[], nsOf: NamespaceOf, exists: (ns: string) => boolean): { next: Assignment; slotNs: Map<string, (string | null)[]> } {
  const next = emptyAssignment()
  const slotNsOf = new Map<string, (string | null)[]>()
  for (const lb of lbs)
    for (const b of lb.backends) {
      const id = backendId(lb.id, b.name)
      const prevSlots = prev.backends.get(id)?.slots ?? []
      const keep = (prev.members.get(id) ?? []).flatMap((m, k) => {
        const ns = prevSlots[k]?.ns ?? null
        return ns === null || exists(ns) ? [{ member: m, ns }] : []
      })
      const members = keep.map((x) => x.member)
      const slotNs = keep.map((x) => x.ns)
      const wanted = new Map(b.servers.map((s) => [s.id, s]))
      // A member that left, or whose namespace changed, frees its slot.
      for (let k = 0; k < members.length; k++) if (members[k] && (!wanted.has(members[k]!) || nsOf(wanted.get(members[k]!)!) !== slotNs[k])) members[k] = null
      const perNs = new Map<string | null, number>()
      for (const s of b.servers) perNs.set(nsOf(s), (perNs.get(nsOf(s)) ?? 0) + 1)
      for (const [ns, count] of perNs) {
        const have = slotNs.filter((x) => x === ns).length
        if (have >= count) continue
        for (let k = have; k < slotCount(count); k++) {
          members.push(null)
          slotNs.push(ns)
        }
      }
      for (const s of b.servers) {
        if (members.includes(s.id)) continue
        const ns = nsOf(s)
        members[members.findIndex((m, k) => m === null && slotNs[k] === ns)] = s.id
      }
      const slots = members.map((m, k) => (m ? slotOf(wanted.get(m)!, slotNs[k]!) : { ...FREE_SLOT, ns: slotNs[k]! }))
      next.members.set(id, members)
      next.backends.set(id, { id, slots })
      slotNsOf.set(id, slotNs)
    }
  return { next, slotNs: slotNsOf }
}

/** Runtime API commands that turn `prev`'s slot states into `next`'s (same structure). */
export function runtimeCommands(prev: Assignment, next: Assignment): string[] {
  const cmds: string[] = []
  for (const [id, b] of next.backends) {
    const old = prev.backends.get(id)?.slots ?? []
    b.slots.forEach((s, k) => {
      const o = old[k] ?? FREE_SLOT
      const srv = `${id}/s${k}`
      // A slot that changes hands is put in maintenance before it points elsewhere, so HAProxy's
      // slots always match the assignment (a down member keeps its address for when it is back).
      if (o.address !== s.address || o.port !== s.port) {
        if (o.state !== 'maint') cmds.push(`set server ${srv} state maint`)
        cmds.push(`set server ${srv} addr ${s.address} port ${s.port}`)
        cmds.push(`set server ${srv} weight ${s.weight}`)
        if (s.state !== 'maint') cmds.push(`set server ${srv} state ${s.state}`)
        return
      }
      if (o.weight !== s.weight) cmds.push(`set server ${srv} weight ${s.weight}`)
      if (o.state !== s.state) cmds.push(`set server ${srv} state ${s.state}`)
    })
  }
  return cmds
}
