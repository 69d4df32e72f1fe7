'use client'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { useState } from 'react'
import { DataTable } from '@/components/data-table'
import { Badge, Button, ConfirmButton, ErrorBox, Field, inputCls, Mono, PageHeader, Panel, RelTime, tdCls, trCls } from '@/components/ui'
import { roleAtLeast, useTenant } from '@/lib/session'
import { useTRPC } from '@/lib/trpc'

/** Used and free addresses as a bar. */
function UsageBar({ used, free }: { used: number; free: number }) {
  const total = used + free
  const pct = total ? Math.round((used / total) * 100) : 0
  return (
    <div className="flex items-center gap-2" title={`${used} leased, ${free} free`}>
      <div className="h-1.5 w-24 overflow-hidden rounded-full bg-slate-200">
        <div className={`h-full ${pct > 90 ? 'bg-rose-500' : 'bg-sky-500'}`} style={{ width: `${Math.max(pct, used ? 2 : 0)}%` }} />
      </div>
      <span className="text-xs tabular-nums text-slate-600">
        {used} / {total}
      </span>
    </div>
  )
}

/** The leases of one network: every instance's address, MAC and node, and the load-balancing nodes' addresses. */
function Leases({ tenantId, networkId }: { tenantId: string; networkId: string }) {
  const trpc = useTRPC()
  const detail = useQuery(trpc.networks.get.queryOptions({ tenantId, networkId }))
  const d = detail.data
  return (
    <Panel title={d ? `Leases of ${d.name} (${d.leases.length + d.lbAddresses.length})` : 'Leases'} testId="leases">
      <DataTable
        query={detail}
        testId="leases-table"
        columns={[{ label: 'IP' }, { label: 'MAC' }, { label: 'Instance' }, { label: 'Node' }, { label: 'Leased' }]}
        empty={d?.leases.length === 0 && d.lbAddresses.length === 0 ? 'No instance has an address on this network yet.' : null}
      >
        {d?.leases.map((l) => (
          <tr key={l.instanceId} className={trCls} data-testid="lease-row">
            <td className={tdCls}>
              <Mono>{l.ip}</Mono>
            </td>
            <td className={tdCls}>
              <Mono className="text-slate-500">{l.mac}</Mono>
            </td>
            <td className={tdCls}>
              {l.app.name} <span className="text-slate-400">#{l.ordinal}</span>
            </td>
            <td className={tdCls}>{l.node ? l.node.name : <span className="text-slate-400">not placed</span>}</td>
            <td className={tdCls}>
              <RelTime date={l.createdAt} />
            </td>
          </tr>
        ))}
        {d?.lbAddresses.map((l) => (
          <tr key={`lb-${l.node.id}`} className={trCls} data-testid="lease-row-lb">
            <td className={tdCls}>
              <Mono>{l.ip}</Mono>
            </td>
            <td className={tdCls}>
              <Mono className="text-slate-500">{l.mac}</Mono>
            </td>
            <td className={tdCls}>
              <span className="text-slate-500">load balancing (reaches the instances by IP)</span>
            </td>
            <td className={tdCls}>{l.node.name}</td>
            <td className={tdCls}>
              <RelTime date={l.createdAt} />
            </td>
          </tr>
        ))}
      </DataTable>
    </Panel>
  )
}

/** A tenant's private networks: CIDR, VXLAN segment, nodes, address use and leases; admins create and delete. */
export default function NetworksPage() {
  const trpc = useTRPC()
  const tenant = useTenant()
  const qc = useQueryClient()
  const canManage = roleAtLeast(tenant.role, 'admin')
  const list = useQuery(trpc.networks.list.queryOptions({ tenantId: tenant.id }))
  const t = useQuery(trpc.tenants.get.queryOptions({ tenantId: tenant.id }))
  const [selected, setSelected] = useState<string | null>(null)
  const [name, setName] = useState('')
  const [cidr, setCidr] = useState('')
  const refresh = () => qc.invalidateQueries({ queryKey: trpc.networks.pathKey() })
  const create = useMutation(trpc.networks.create.mutationOptions({ onSuccess: () => (setName(''), setCidr(''), refresh()) }))
  const remove = useMutation(trpc.networks.delete.mutationOptions({ onSuccess: refresh }))
  const quota = t.data?.quotas.networks
  const shown = selected ?? list.data?.[0]?.id ?? null

  return (
    <>
      <PageHeader
        title="Networks"
        subtitle="Private L2 networks (VXLAN) for this tenant's apps. An instance keeps its address when it restarts or moves to another node."
        badge={quota !== undefined && list.data ? <Badge tone="gray">{`${list.data.length} of ${quota} networks`}</Badge> : undefined}
      />
      {canManage ? (
        <Panel title="New network" className="mb-5" testId="new-network">
          <form
            className="grid gap-4 p-4 sm:grid-cols-4"
            onSubmit={(e) => {
              e.preventDefault()
              create.mutate({ tenantId: tenant.id, name, ...(cidr.trim() && { cidr: cidr.trim() }) })
            }}
          >
            <Field label="Name" htmlFor="n-name">
              <input id="n-name" className={inputCls} value={name} onChange={(e) => setName(e.target.value)} placeholder="backend" />
            </Field>
            <Field label="CIDR" htmlFor="n-cidr" hint="Empty: the next free block of the platform's pool. Any private range, /16 to /29." className="sm:col-span-2">
              <input id="n-cidr" className={inputCls} value={cidr} onChange={(e) => setCidr(e.target.value)} placeholder="100.64.50.0/24" />
            </Field>
            <div className="flex items-end justify-end">
              <Button type="submit" variant="primary" disabled={create.isPending || !name.trim()} data-testid="network-create">
                {create.isPending ? 'Creating…' : 'Create network'}
              </Button>
            </div>
            <ErrorBox error={create.error} className="sm:col-span-4" />
          </form>
        </Panel>
      ) : null}
      <Panel title="Networks" className="mb-5" testId="networks">
        <DataTable
          query={list}
          error={list.error ?? remove.error}
          testId="networks-table"
          columns={[{ label: 'Name' }, { label: 'CIDR' }, { label: 'Gateway' }, { label: 'VXLAN' }, { label: 'Apps', className: 'text-right' }, { label: 'Addresses' }, { label: 'Nodes' }, {}]}
          empty={list.data?.length === 0 ? 'No networks.' : null}
        >
          {list.data?.map((n) => (
            <tr key={n.id} className={`${trCls} cursor-pointer ${shown === n.id ? 'bg-sky-50/60' : ''}`} onClick={() => setSelected(n.id)} data-testid="network-row" data-network={n.name}>
              <td className={tdCls}>
                <span className="font-medium text-slate-800">{n.name}</span>
                {n.isDefault ? (
                  <Badge tone="gray" className="ml-2">
                    default
                  </Badge>
                ) : null}
              </td>
              <td className={tdCls}>
                <Mono>{n.cidr}</Mono>
              </td>
              <td className={tdCls}>
                <Mono className="text-slate-500">{n.gateway}</Mono>
              </td>
              <td className={tdCls}>
                <Mono>{n.vxlanId}</Mono>
              </td>
              <td className={`${tdCls} text-right tabular-nums`}>{n.apps}</td>
              <td className={tdCls}>
                <UsageBar used={n.used} free={n.free} />
              </td>
              <td className={tdCls}>{n.nodes.length ? n.nodes.map((x) => x.name).join(', ') : <span className="text-slate-400">none</span>}</td>
              <td className={`${tdCls} text-right`} onClick={(e) => e.stopPropagation()}>
                {canManage && !n.isDefault ? (
                  <ConfirmButton size="sm" onConfirm={() => remove.mutate({ tenantId: tenant.id, networkId: n.id })} label="Delete" question={n.apps ? 'Apps use it: delete them first.' : 'Delete this network?'} confirmLabel="Delete" pending={remove.isPending} testId="network-delete" />
                ) : null}
              </td>
            </tr>
          ))}
        </DataTable>
      </Panel>
      {shown ? <Leases tenantId={tenant.id} networkId={shown} /> : null}
    </>
  )
}
