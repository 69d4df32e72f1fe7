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

const slotOf = (s: TLbServer): Slot => ({ address: s.address, port: s.port, weight: s.weight, state: s.state === 'down' ? 'maint' : s.state })

export function assign(prev: Assignment, lbs: readonly TDesiredLb[]): { next: Assignment; slotCounts: Map<string, number> } {
  const next = emptyAssignment()
  const slotCounts = new Map<string, number>()
  for (const lb of lbs)
    for (const b of lb.backends) {
      const id = backendId(lb.id, b.name)
      const before = prev.members.get(id) ?? []
      // Grows (with headroom) only when the members no longer fit: never shrinks, so nothing moves.
      const size = before.length >= b.servers.length ? before.length : slotCount(b.servers.length)
      const members: (string | null)[] = Array.from({ length: size }, (_, k) => before[k] ?? null)
      const wanted = new Map(b.servers.map((s) => [s.id, s]))
      for (let k = 0; k < members.length; k++) if (members[k] && !wanted.has(members[k]!)) members[k] = null
      for (const s of b.servers) {
        if (members.includes(s.id)) continue
        members[members.indexOf(null)] = s.id
      }
      const slots = members.map((m) => (m ? slotOf(wanted.get(m)!) : FREE_SLOT))
      next.members.set(id, members)
      next.backends.set(id, { id, slots })
      slotCounts.set(id, members.length)
    }
  return { next, slotCounts }
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
