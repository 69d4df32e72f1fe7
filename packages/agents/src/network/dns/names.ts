/**
 * Which names an instance can resolve on its network, pure: `<app>` (the app's ready instances,
 * like a Kubernetes Service's endpoints) and `<ordinal>.<app>` (one instance wherever it is
 * placed, ready or not, like a StatefulSet pod's name: its address is sticky), from the
 * endpoints the desired state carries (the control plane knows each instance's readiness).
 * A name is ours when its last label is an app of the network; anything else goes upstream.
 */
import type { TNetworkEndpoint } from '@alveary/core/protocol'

export type Lookup = { ours: true; ips: string[] } | { ours: false }

export type NameTable = ReadonlyMap<string, ReadonlyArray<{ ordinal: number; ip: string; ready: boolean }>>

/** app name (lowercase) → its endpoints, by ordinal then address. */
export function nameTable(endpoints: readonly TNetworkEndpoint[]): NameTable {
  const out = new Map<string, Array<{ ordinal: number; ip: string; ready: boolean }>>()
  for (const e of endpoints) {
    // A load-balancing node's address on the network: a member, but no name leads to it.
    if (!e.app) continue
    const k = e.app.toLowerCase()
    const list = out.get(k) ?? []
    list.push({ ordinal: e.ordinal, ip: e.ip, ready: e.ready })
    out.set(k, list)
  }
  for (const list of out.values()) list.sort((a, b) => a.ordinal - b.ordinal || a.ip.localeCompare(b.ip))
  return out
}

/**
 * `name` lowercase without the trailing dot. `<ordinal>.<app>` with no such ordinal, and `<app>`
 * with no ready instance, are still ours (an empty answer, NXDOMAIN), so the question does not
 * leak to the node's resolver.
 */
export function lookup(table: NameTable, name: string): Lookup {
  const labels = name.split('.')
  if (labels.length === 1) {
    const list = table.get(labels[0]!)
    return list ? { ours: true, ips: [...new Set(list.filter((e) => e.ready).map((e) => e.ip))] } : { ours: false }
  }
  if (labels.length === 2 && /^\d{1,6}$/.test(labels[0]!)) {
    const list = table.get(labels[1]!)
    if (!list) return { ours: false }
    const ordinal = Number(labels[0])
    return { ours: true, ips: list.filter((e) => e.ordinal === ordinal).map((e) => e.ip) }
  }
  return { ours: false }
}
