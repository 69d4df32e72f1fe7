import type { TMove, TNode } from '@alveary/core'
import type { Command } from 'commander'
import { isUuid, waitUntil, type Ctx } from '../context'
import { CliError, EXIT } from '../errors'
import { table } from '../output'

async function resolveNode(c: Ctx, ref: string): Promise<TNode> {
  const nodes = await c.api.get<TNode[]>('/nodes')
  const node = nodes.find((n) => n.name === ref || (isUuid(ref) && n.id === ref))
  if (!node) throw new CliError(`No node ${ref}`, EXIT.notFound)
  return node
}

const nodeTable = (nodes: TNode[]) =>
  table(
    ['NAME', 'STATE', 'SCHEDULABLE', 'ADDRESS', 'DRIVERS', 'LB', 'DRAIN', 'DEDICATED', 'ID'],
    nodes.map((n) => [n.name, n.state, n.schedulable ? 'yes' : 'cordoned', n.address, n.drivers.join(','), n.loadBalancing ? (n.lbDriver ?? 'yes') : '', n.drain ? `${n.drain.remaining} left` : '', n.dedicatedTenant?.slug, n.id]),
  )

/** Operators: nodes (list, cordon, uncordon, drain) and moving an instance (`migrate`). */
export function registerFleet(program: Command, ctx: () => Ctx) {
  const nodes = program.command('nodes').description('Operators: the fleet')
  nodes
    .command('list')
    .alias('ls')
    .description('Nodes with their state')
    .action(async () => {
      const c = ctx()
      const list = await c.api.get<TNode[]>('/nodes')
      c.out.result(list, () => (list.length ? nodeTable(list) : 'No nodes.'))
    })
  for (const [verb, help] of [
    ['cordon', 'Place no new instances on a node'],
    ['uncordon', 'Place instances on a node again'],
  ] as const) {
    nodes
      .command(`${verb} <node>`)
      .description(help)
      .action(async (ref: string) => {
        const c = ctx()
        const n = await resolveNode(c, ref)
        await c.api.post(`/nodes/${n.id}/${verb}`)
        c.out.result({ node: n.name, [verb]: true }, () => `node ${n.name} ${verb}ed`)
      })
  }
  nodes
    .command('load-balancing <node> <on|off>')
    .description('Serve load balancers on a node (it needs a data plane: the LB column of nodes list) or stop')
    .action(async (ref: string, state: string) => {
      const c = ctx()
      if (state !== 'on' && state !== 'off') throw new CliError(`load-balancing takes on or off, not "${state}"`, EXIT.usage)
      const n = await resolveNode(c, ref)
      await c.api.put(`/nodes/${n.id}/load-balancing`, { enabled: state === 'on' })
      c.out.result({ node: n.name, loadBalancing: state === 'on' }, () => `node ${n.name} ${state === 'on' ? 'serves' : 'no longer serves'} load balancers`)
    })
  nodes
    .command('drain <node>')
    .description("Move every instance off a node (respecting each app's maxUnavailable)")
    .option('--wait', 'wait until no instance is left on it')
    .option('--timeout <seconds>', 'give up waiting after this long (exit code 9)', '600')
    .action(async (ref: string, o: { wait?: boolean; timeout: string }) => {
      const c = ctx()
      const n = await resolveNode(c, ref)
      await c.api.post(`/nodes/${n.id}/drain`)
      c.out.note(`node ${n.name} draining`)
      const after = o.wait
        ? await waitUntil(c, `drain of ${n.name}`, Number(o.timeout), async () => {
            const left = await c.api.get<unknown[]>(`/nodes/${n.id}/instances`)
            return { done: left.length === 0, progress: `${left.length} instances left`, value: null }
          })
        : null
      c.out.result({ node: n.name, drained: o.wait ? true : 'started', after }, () => `node ${n.name} ${o.wait ? 'drained' : 'draining'}`)
    })

  program
    .command('migrate <instance>')
    .description('Operators: move an instance to another node (it keeps its id, address and volumes)')
    .option('--to <node>', 'the target node (default: the scheduler picks)')
    .option('--wait', 'wait until the move has finished')
    .option('--timeout <seconds>', 'give up waiting after this long (exit code 9)', '600')
    .action(async (instanceId: string, o: { to?: string; wait?: boolean; timeout: string }) => {
      const c = ctx()
      if (!isUuid(instanceId)) throw new CliError('migrate takes an instance id (see `alveary instances APP`)', EXIT.usage)
      const targetNodeId = o.to ? (await resolveNode(c, o.to)).id : null
      let move = await c.api.post<TMove>('/moves', { instanceId, targetNodeId })
      c.out.note(`move ${move.id} started`)
      if (o.wait) {
        move = await waitUntil(c, 'move', Number(o.timeout), async () => {
          const m = await c.api.get<TMove>(`/moves/${move.id}`)
          return { done: m.state === 'succeeded' || m.state === 'failed', progress: `${m.state}: ${m.step}`, value: m }
        })
        if (move.state === 'failed') throw new CliError(`move failed: ${move.error ?? 'unknown'}`, EXIT.failed, move)
      }
      c.out.result(move, () => `move ${move.id}: ${move.state} (${move.source.name} → ${move.target?.name ?? '?'})${move.downtimeMs !== null ? `, downtime ${move.downtimeMs} ms` : ''}`)
    })
}
