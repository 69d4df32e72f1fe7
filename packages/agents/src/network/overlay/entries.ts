/**
 * A network's forwarding entries in its router namespace: VXLAN entries (which node a MAC is
 * behind; all-zeros entries replicate broadcasts to every peer) and static ARP entries on the
 * bridge, made to match the desired state (plan.ts decides, this applies).
 */
import type { TDesiredNetwork } from '@alveary/core/protocol'
import type { Tools } from '../exec'
import type { Ip } from '../links'
import type { OverlayNames } from '../names'
import { desiredFdb, desiredNeigh, diffFdb, diffNeigh, type FdbEntry, type NeighEntry } from './plan'

export function createEntries(o: { names: OverlayNames; vtep: string; tools: Tools; ip: Ip }) {
  const { names, vtep, tools, ip } = o
  return {
    async sync(net: TDesiredNetwork): Promise<void> {
      const R = names.routerNs(net.vxlanId)
      const fdb = (await tools.json<Array<{ mac: string; dst?: string }>>('bridge', ['-n', R, '-j', 'fdb', 'show', 'dev', 'vx0']))
        .filter((e): e is FdbEntry => typeof e.dst === 'string')
        .map((e) => ({ mac: e.mac, dst: e.dst }))
      const f = diffFdb(desiredFdb(net, vtep), fdb)
      const del = f.del.map((e) => `fdb del ${e.mac} dev vx0 dst ${e.dst} self`)
      const add = f.add.map((e) => `fdb ${e.mac === '00:00:00:00:00:00' ? 'append' : 'replace'} ${e.mac} dev vx0 dst ${e.dst} self permanent`)
      if (del.length) await tools.run('bridge', ['-n', R, '-force', '-batch', '-'], del.join('\n') + '\n')
      if (add.length) await tools.run('bridge', ['-n', R, '-batch', '-'], add.join('\n') + '\n')

      const neigh = (await ip.json<Array<{ dst: string; lladdr?: string }>>(['-n', R, 'neigh', 'show', 'dev', 'br0', 'nud', 'permanent']))
        .filter((n): n is { dst: string; lladdr: string } => typeof n.lladdr === 'string')
        .map((n): NeighEntry => ({ ip: n.dst, mac: n.lladdr }))
      const n = diffNeigh(desiredNeigh(net), neigh)
      await ip.batch(R, [...n.del.map((e) => `neigh del ${e.ip} dev br0`), ...n.set.map((e) => `neigh replace ${e.ip} lladdr ${e.mac} dev br0 nud permanent`)])
    },
  }
}
