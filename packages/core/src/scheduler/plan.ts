import { detail, filters } from './filters'
import { scorers } from './scorers'
import type { PlacementRequest, PortRange, SchedNode } from './types'

export type PlanResult = { nodeId: string } | { reason: string }

/**
 * How many feasible nodes to find before scoring (Kubernetes' adaptive percentage): all of
 * a small fleet, 10% of 5,000 nodes, never fewer than 100. Scoring every node of a large
 * fleet buys little placement quality for a lot of time.
 */
export function feasibleToFind(total: number): number {
  if (total <= 100) return total
  const pct = Math.max(5, 50 - total / 125)
  return Math.max(100, Math.ceil((total * pct) / 100))
}

/** "3 nodes: insufficient memory; 2 nodes: dedicated to another tenant" */
export function explain(total: number, reasons: ReadonlyMap<string, number>): string {
  if (total === 0) return 'no nodes have joined'
  return [...reasons.entries()]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([why, n]) => `${n} node${n === 1 ? '' : 's'}: ${why}`)
    .join('; ')
}

function firstReject(n: SchedNode, r: PlacementRequest, ports: PortRange): string | null {
  for (const f of filters) {
    const why = f.run(n, r, { ports })
    if (why) return why
  }
  return null
}

/**
 * Filter then score: pure over the nodes given (read as an immutable snapshot). Scanning
 * starts at `offset` so consecutive placements do not all examine the same nodes first.
 */
export function planOne(nodes: readonly SchedNode[], req: PlacementRequest, opts: { ports: PortRange; offset?: number; sample?: number }): PlanResult {
  const total = nodes.length
  const want = opts.sample ?? feasibleToFind(total)
  const start = total ? (opts.offset ?? 0) % total : 0
  const feasible: SchedNode[] = []
  let reasons: Map<string, number> | null = null
  for (let k = 0; k < total && feasible.length < want; k++) {
    const n = nodes[(start + k) % total]!
    const why = firstReject(n, req, opts.ports)
    if (why === null) feasible.push(n)
    else {
      reasons ??= new Map()
      const text = total === 1 ? detail(why, n, req) : why
      reasons.set(text, (reasons.get(text) ?? 0) + 1)
    }
  }
  if (feasible.length === 0) return { reason: explain(total, reasons ?? new Map()) }
  if (feasible.length === 1) return { nodeId: feasible[0]!.id }

  // Normalise each scorer to 0..100 over the feasible nodes, then weight and sum.
  const totals = new Float64Array(feasible.length)
  const raw = new Float64Array(feasible.length)
  for (const s of scorers) {
    const w = s.weight(req)
    if (w === 0) continue
    let min = s.range ? s.range[0] : Infinity
    let max = s.range ? s.range[1] : -Infinity
    for (let i = 0; i < feasible.length; i++) {
      const v = s.score(feasible[i]!, req)
      raw[i] = v
      if (!s.range && v < min) min = v
      if (!s.range && v > max) max = v
    }
    const span = max - min
    if (span === 0) continue
    for (let i = 0; i < feasible.length; i++) totals[i]! += (w * 100 * (raw[i]! - min)) / span
  }
  let best = 0
  for (let i = 1; i < feasible.length; i++) if (totals[i]! > totals[best]! || (totals[i] === totals[best] && feasible[i]!.name < feasible[best]!.name)) best = i
  return { nodeId: feasible[best]!.id }
}
