'use client'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import clsx from 'clsx'
import Link from 'next/link'
import type { ReactNode } from 'react'
import { DataTable } from '@/components/data-table'
import { NodeActions, NodeLbToggle, NodeStateCell, ResourceCell, SchedulingBadge } from '@/components/nodes'
import { Badge, ButtonLink, ErrorBox, inputBase, Mono, PageHeader, Panel, RelTime, tdCls, trCls } from '@/components/ui'
import { fmtCpu, fmtMem } from '@/lib/format'
import { useTRPC, type TNode, type TTenant } from '@/lib/trpc'
import { JoinTokens } from './join-tokens'

function NodeRow({ n, tenants }: { n: TNode; tenants: TTenant[] }) {
  const trpc = useTRPC()
  const qc = useQueryClient()
  const dedicate = useMutation(trpc.nodes.setDedicatedTenant.mutationOptions({ onSuccess: () => qc.invalidateQueries({ queryKey: trpc.nodes.pathKey() }) }))
  const behind = n.appliedGeneration < n.desiredGeneration
  const notReady = n.state !== 'ready'
  return (
    <tr
      className={clsx(trCls, notReady && 'bg-red-50/50 hover:bg-red-50')}
      data-testid="node-row"
      data-node-id={n.id}
      data-node-name={n.name}
      data-state={n.state}
      data-schedulable={String(n.schedulable)}
      data-connected={String(n.connected)}
      data-draining={String(!!n.drain)}
      data-instances={n.allocated.instances}
    >
      <td className={clsx(tdCls, notReady && 'border-l-2 border-l-red-500')}>
        <Link href={`/ops/nodes/${n.id}`} className="font-medium text-slate-900 hover:underline" data-testid="node-link">
          {n.name}
        </Link>
        <Mono className="block text-[11px] text-slate-500">{n.address}</Mono>
      </td>
      <td className={tdCls}>
        <NodeStateCell n={n} />
      </td>
      <td className={tdCls}>
        <div className="flex flex-col items-start gap-1">
          <SchedulingBadge n={n} />
          <NodeActions n={n} />
          <select
            aria-label={`Tenants that may use ${n.name}`}
            title="Dedicate this node to one tenant"
            value={n.dedicatedTenant?.id ?? ''}
            disabled={dedicate.isPending}
            onChange={(e) => dedicate.mutate({ nodeId: n.id, tenantId: e.target.value || null })}
            className={clsx(inputBase, 'w-40 text-xs', n.dedicatedTenant && 'border-violet-300 bg-violet-50 text-violet-800')}
            data-testid="node-dedicated"
          >
            <option value="">all tenants</option>
            {tenants.map((t) => (
              <option key={t.id} value={t.id}>
                dedicated: {t.slug}
              </option>
            ))}
          </select>
          {dedicate.error ? <ErrorBox error={dedicate.error} className="py-1 text-xs" /> : null}
        </div>
      </td>
      <td className={tdCls}>
        <div className="flex flex-wrap gap-1">
          {n.drivers.map((d) => (
            <Badge key={d} tone={d === 'docker' ? 'blue' : 'gray'}>
              {d}
            </Badge>
          ))}
        </div>
        {n.lbDriver ? (
          <div className="mt-1.5">
            <NodeLbToggle n={n} />
          </div>
        ) : null}
      </td>
      <td className={tdCls}>
        <ResourceCell cap={n.capacity.cpuMillis} alloc={n.allocated.cpuMillis} used={n.usage.cpuMillis} fmt={fmtCpu} />
      </td>
      <td className={tdCls}>
        <ResourceCell cap={n.capacity.memoryMb} alloc={n.allocated.memoryMb} used={n.usage.memoryMb} fmt={fmtMem} />
      </td>
      <td className={`${tdCls} text-right font-medium`} data-testid="node-instances">
        {n.allocated.instances}
      </td>
      <td className={clsx(tdCls, notReady ? 'font-medium text-red-700' : 'text-slate-600')}>
        <RelTime date={n.lastHeartbeatAt} />
      </td>
      <td className={tdCls}>
        <Mono className="text-slate-600">{n.agentVersion || '—'}</Mono>
      </td>
      <td className={`${tdCls} tabular-nums`} title="applied / desired generation of the node's workload">
        <span className={behind ? 'font-medium text-amber-700' : 'text-slate-600'}>
          {n.appliedGeneration}/{n.desiredGeneration}
        </span>
      </td>
    </tr>
  )
}

function Stat({ label, value, sub }: { label: string; value: ReactNode; sub?: ReactNode }) {
  return (
    <div className="px-4 py-3">
      <div className="text-xs font-medium uppercase tracking-wide text-slate-500">{label}</div>
      <div className="mt-1 text-xl font-semibold tabular-nums text-slate-900">{value}</div>
      {sub ? <div className="text-xs tabular-nums text-slate-500">{sub}</div> : null}
    </div>
  )
}


export function NodesView({ agentServer, bffPort }: { agentServer: string | null; bffPort: string }) {
  const trpc = useTRPC()
  const nodes = useQuery(trpc.nodes.list.queryOptions())
  const tenants = useQuery(trpc.tenants.list.queryOptions())
  const list = nodes.data ?? []
  const ready = list.filter((n) => n.state === 'ready').length
  const draining = list.filter((n) => n.drain).length
  const sum = (f: (n: TNode) => number) => list.reduce((s, n) => s + f(n), 0)
  return (
    <>
      <title>Nodes · Alveary</title>
      <PageHeader
        title="Nodes"
        subtitle="Machines that run instances, with what is allocated to and used on each."
        actions={
          <ButtonLink href="/ops/scheduler" data-testid="to-scheduler">
            Scheduler
          </ButtonLink>
        }
      />
      <Panel className="mb-5">
        <div className="grid grid-cols-2 divide-slate-100 md:grid-cols-5 md:divide-x">
          <Stat
            label="Ready"
            value={<span className={ready < list.length ? 'text-red-700' : undefined}>{`${ready} / ${list.length}`}</span>}
            sub={[ready < list.length ? `${list.length - ready} not ready` : null, `${list.filter((n) => !n.schedulable).length} cordoned`, draining ? `${draining} draining` : null].filter(Boolean).join(' · ')}
          />
          <Stat label="Instances" value={sum((n) => n.allocated.instances)} sub="placed on nodes" />
          <Stat label="CPU allocated" value={fmtCpu(sum((n) => n.allocated.cpuMillis))} sub={`of ${fmtCpu(sum((n) => n.capacity.cpuMillis))}`} />
          <Stat label="Memory allocated" value={fmtMem(sum((n) => n.allocated.memoryMb))} sub={`of ${fmtMem(sum((n) => n.capacity.memoryMb))}`} />
          <Stat label="Measured use" value={fmtCpu(sum((n) => n.usage.cpuMillis))} sub={`${fmtMem(sum((n) => n.usage.memoryMb))} memory`} />
        </div>
      </Panel>
      <Panel title="Nodes" className="mb-5">
        <DataTable
          query={nodes}
          testId="nodes-table"
          columns={[
            { label: 'Node' },
            { label: 'State' },
            { label: 'Scheduling' },
            { label: 'Drivers' },
            { label: 'CPU' },
            { label: 'Memory' },
            { label: 'Inst.', className: 'text-right' },
            { label: 'Heartbeat' },
            { label: 'Agent' },
            { label: 'Gen.', title: 'applied / desired' },
          ]}
          empty={list.length === 0 ? 'No nodes have joined yet. Create a join token below and start an agent with it.' : null}
        >
          {list.map((n) => (
            <NodeRow key={n.id} n={n} tenants={tenants.data ?? []} />
          ))}
        </DataTable>
      </Panel>
      <JoinTokens agentServer={agentServer} bffPort={bffPort} />
    </>
  )
}
