import type { Scorer } from './types'

const frac = (used: number, cap: number) => (cap > 0 ? used / cap : 1)

export const scorers: readonly Scorer[] = [
  {
    // spread: prefer the emptiest node; binpack: the fullest that still fits.
    name: 'allocation',
    range: [0, 1],
    weight: () => 1,
    score: (n, r) => {
      const cpu = frac(n.cpuAllocated + r.cpuMillis, n.cpuCapacity)
      const mem = frac(n.memoryAllocated + r.memoryMb, n.memoryCapacity)
      const used = (cpu + mem) / 2
      return r.strategy === 'binpack' ? used : 1 - used
    },
  },
  {
    // Keep cpu and memory use in proportion so neither strands the other.
    name: 'balanced',
    range: [0, 1],
    weight: () => 1,
    score: (n, r) => 1 - Math.abs(frac(n.cpuAllocated + r.cpuMillis, n.cpuCapacity) - frac(n.memoryAllocated + r.memoryMb, n.memoryCapacity)),
  },
  {
    // Soft anti-affinity: fewer replicas of the same app on the node is better.
    name: 'app-spread',
    weight: (r) => (r.spread === 'soft' ? 2 : 0),
    score: (n, r) => -(n.appCounts.get(r.appId) ?? 0),
  },
]
