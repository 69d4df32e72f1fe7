/**
 * Server choice for the built-in proxy: smooth weighted round robin (nginx's algorithm) or
 * least connections (ties by weight). Only `ready` servers with a weight get new clients;
 * `drain` servers keep sticky ones.
 */
import type { TLbServer } from '@alveary/core/protocol'

export interface Picker {
  update(servers: readonly TLbServer[], algorithm: 'roundrobin' | 'leastconn'): void
  /** The next server for a new client, skipping `exclude`; null when none can take it. */
  pick(exclude: ReadonlySet<string>): TLbServer | null
  /** A sticky client's server, if it still takes sticky clients. */
  byId(id: string): TLbServer | null
  /** Counts an open request or connection; call the result when it ends. */
  acquire(id: string): () => void
  /** Per listed server: requests or connections open now and since it was listed. */
  counts(): { id: string; current: number; total: number }[]
}

export function createPicker(algorithm: 'roundrobin' | 'leastconn'): Picker {
  let servers: TLbServer[] = []
  let algo = algorithm
  const current = new Map<string, number>()
  const active = new Map<string, number>()
  const totals = new Map<string, number>()
  return {
    update(next, a) {
      servers = [...next]
      algo = a
      for (const id of [...current.keys()]) if (!servers.some((s) => s.id === id)) current.delete(id)
      for (const id of [...totals.keys()]) if (!servers.some((s) => s.id === id)) totals.delete(id)
    },
    pick(exclude) {
      const open = servers.filter((s) => s.state === 'ready' && s.weight > 0 && !exclude.has(s.id))
      if (!open.length) return null
      if (algo === 'leastconn') {
        return open.reduce((best, s) => {
          const [a, b] = [(active.get(s.id) ?? 0) / s.weight, (active.get(best.id) ?? 0) / best.weight]
          return a < b ? s : best
        })
      }
      const total = open.reduce((sum, s) => sum + s.weight, 0)
      let best = open[0]!
      for (const s of open) {
        current.set(s.id, (current.get(s.id) ?? 0) + s.weight)
        if (current.get(s.id)! > current.get(best.id)!) best = s
      }
      current.set(best.id, current.get(best.id)! - total)
      return best
    },
    byId(id) {
      const s = servers.find((x) => x.id === id)
      return s && s.state !== 'down' ? s : null
    },
    acquire(id) {
      active.set(id, (active.get(id) ?? 0) + 1)
      totals.set(id, (totals.get(id) ?? 0) + 1)
      let done = false
      return () => {
        if (done) return
        done = true
        const n = (active.get(id) ?? 1) - 1
        if (n > 0) active.set(id, n)
        else active.delete(id)
      }
    },
    counts: () => servers.map((s) => ({ id: s.id, current: active.get(s.id) ?? 0, total: totals.get(s.id) ?? 0 })),
  }
}
