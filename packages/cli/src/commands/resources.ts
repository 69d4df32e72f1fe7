import type { TLoadBalancer, TNetwork, TTenant } from '@alveary/core'
import { ZCreateLbInput, ZLbSettings } from '@alveary/core/schemas'
import type { Command } from 'commander'
import { isUuid, type Ctx } from '../context'
import { CliError, EXIT } from '../errors'
import { readSpecFile } from '../files'
import { table } from '../output'

async function resolveIn<T extends { id: string; name: string }>(c: Ctx, kind: string, list: string, ref: string): Promise<{ tenantId: string; item: T }> {
  const tenantId = await c.tenantId()
  const items = await c.api.get<T[]>(`/tenants/${tenantId}/${list}`)
  const item = items.find((x) => x.name === ref || (isUuid(ref) && x.id === ref))
  if (!item) throw new CliError(`No ${kind} ${ref} in this tenant`, EXIT.notFound)
  return { tenantId, item }
}

const lbTable = (lbs: TLoadBalancer[]) =>
  table(
    ['NAME', 'STATE', 'LISTENERS', 'ADDRESSES', 'ID'],
    lbs.map((l) => [l.name, l.state, l.listeners.map((x) => `${x.protocol}:${x.port}`).join(','), l.addresses.map((a) => a.url).join(' '), l.id]),
  )
const netTable = (nets: TNetwork[]) => table(['NAME', 'CIDR', 'GATEWAY', 'VXLAN', 'APPS', 'USED', 'FREE', 'ID'], nets.map((n) => [`${n.name}${n.isDefault ? ' (default)' : ''}`, n.cidr, n.gateway, n.vxlanId, n.apps, n.used, n.free, n.id]))

/** Tenants, load balancers and networks. */
export function registerResources(program: Command, ctx: () => Ctx) {
  const tenants = program.command('tenants').description('Tenants you belong to')
  tenants
    .command('list', { isDefault: true })
    .alias('ls')
    .description('Tenants with your role')
    .action(async () => {
      const c = ctx()
      const list = await c.api.get<TTenant[]>('/tenants')
      c.out.result(list, () => table(['SLUG', 'NAME', 'ROLE', 'ID'], list.map((t) => [t.slug, t.name, t.role, t.id])))
    })

  const lb = program.command('lb').description('Load balancers of the tenant')
  lb.command('list')
    .alias('ls')
    .action(async () => {
      const c = ctx()
      const list = await c.api.get<TLoadBalancer[]>(`/tenants/${await c.tenantId()}/load-balancers`)
      c.out.result(list, () => (list.length ? lbTable(list) : 'No load balancers.'))
    })
  lb.command('get <lb>').action(async (ref: string) => {
    const c = ctx()
    const { item } = await resolveIn<TLoadBalancer>(c, 'load balancer', 'load-balancers', ref)
    c.out.result(item, () => lbTable([item]))
  })
  lb.command('create')
    .description('Create one from a file (name, listeners with rules and targets, algorithm, stickySeconds, drainSeconds, retryUnanswered)')
    .requiredOption('-f, --file <file>', 'YAML or JSON')
    .action(async (o: { file: string }) => {
      const c = ctx()
      const input = readSpecFile(o.file, ZCreateLbInput)
      const created = await c.api.post<TLoadBalancer>(`/tenants/${await c.tenantId()}/load-balancers`, input)
      c.out.result(created, () => lbTable([created]))
    })
  lb.command('update <lb>')
    .description('Replace its settings from a file')
    .requiredOption('-f, --file <file>', 'YAML or JSON')
    .action(async (ref: string, o: { file: string }) => {
      const c = ctx()
      const settings = readSpecFile(o.file, ZLbSettings)
      const { tenantId, item } = await resolveIn<TLoadBalancer>(c, 'load balancer', 'load-balancers', ref)
      const updated = await c.api.put<TLoadBalancer>(`/tenants/${tenantId}/load-balancers/${item.id}`, settings)
      c.out.result(updated, () => lbTable([updated]))
    })
  lb.command('delete <lb>')
    .alias('rm')
    .action(async (ref: string) => {
      const c = ctx()
      const { tenantId, item } = await resolveIn<TLoadBalancer>(c, 'load balancer', 'load-balancers', ref)
      await c.api.delete(`/tenants/${tenantId}/load-balancers/${item.id}`)
      c.out.result({ deleted: item.id }, () => `load balancer ${item.name} deleted`)
    })

  const networks = program.command('networks').description('Networks of the tenant')
  networks
    .command('list')
    .alias('ls')
    .action(async () => {
      const c = ctx()
      const list = await c.api.get<TNetwork[]>(`/tenants/${await c.tenantId()}/networks`)
      c.out.result(list, () => netTable(list))
    })
  networks
    .command('create <name>')
    .option('--cidr <cidr>', 'a private CIDR from /16 to /29 (default: the next free block of the pool)')
    .action(async (name: string, o: { cidr?: string }) => {
      const c = ctx()
      const n = await c.api.post<TNetwork>(`/tenants/${await c.tenantId()}/networks`, { name, ...(o.cidr && { cidr: o.cidr }) })
      c.out.result(n, () => netTable([n]))
    })
  networks
    .command('delete <network>')
    .alias('rm')
    .action(async (ref: string) => {
      const c = ctx()
      const { tenantId, item } = await resolveIn<TNetwork>(c, 'network', 'networks', ref)
      await c.api.delete(`/tenants/${tenantId}/networks/${item.id}`)
      c.out.result({ deleted: item.id }, () => `network ${item.name} deleted`)
    })
}
