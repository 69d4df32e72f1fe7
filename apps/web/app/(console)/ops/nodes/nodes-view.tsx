'use client'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import clsx from 'clsx'
import Link from 'next/link'
import { useEffect, useState, type ReactNode } from 'react'
import { useForm } from 'react-hook-form'
import { DataTable } from '@/components/data-table'
import { NodeActions, NodeStateCell, ResourceCell, SchedulingBadge } from '@/components/nodes'
import {
  Badge,
  Button,
  ButtonLink,
  ConfirmButton,
  ErrorBox,
  Field,
  inputBase,
  inputCls,
  Mono,
  PageHeader,
  Panel,
  RelTime,
  tdCls,
  trCls,
} from '@/components/ui'
import { fmtCpu, fmtMem } from '@/lib/format'
import { useNow } from '@/lib/use-now'
import { useTRPC, type TNode, type TTenant } from '@/lib/trpc'

function NodeRow({ n, tenants }: { n: TNode; tenants: TTenant[] }) {
  const trpc = useTRPC()
  const qc = useQueryClient()
  const dedicate = useMutation(trpc.nodes.setDedicatedTenant.mutationOptions({ onSuccess: () => qc.invalidateQueries({ queryKey: trpc.nodes.pathKey() }) }))
  const setLb = useMutation(trpc.loadBalancers.setNode.mutationOptions({ onSuccess: () => qc.invalidateQueries({ queryKey: trpc.nodes.pathKey() }) }))
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
          <label className="mt-1.5 flex items-center gap-1.5 text-xs text-slate-600" title={`Serve the platform's load balancers on this node (${n.lbDriver})`}>
            <input
              type="checkbox"
              checked={n.loadBalancing}
              disabled={setLb.isPending}
              onChange={(e) => setLb.mutate({ nodeId: n.id, enabled: e.target.checked })}
              data-testid="node-lb"
            />
            load balancing <span className="text-slate-400">({n.lbDriver})</span>
          </label>
        ) : null}
        {setLb.error ? <ErrorBox error={setLb.error} className="py-1 text-xs" /> : null}
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

function CopyButton({ text }: { text: string }) {
  const [copied, setCopied] = useState(false)
  return (
    <Button
      size="sm"
      onClick={async () => {
        try {
          await navigator.clipboard.writeText(text)
          setCopied(true)
          setTimeout(() => setCopied(false), 1500)
        } catch {
          /* not a secure context: the text is selectable */
        }
      }}
    >
      {copied ? 'Copied' : 'Copy'}
    </Button>
  )
}

interface TokenForm {
  description: string
  ttlHours: number
  uses: number
  agentName: string
}

function JoinTokens({ agentServer, bffPort }: { agentServer: string | null; bffPort: string }) {
  const trpc = useTRPC()
  const qc = useQueryClient()
  const now = useNow()
  const tokens = useQuery(trpc.joinTokens.list.queryOptions())
  const [host, setHost] = useState('HOST')
  useEffect(() => setHost(window.location.hostname), [])
  const form = useForm<TokenForm>({ defaultValues: { description: '', ttlHours: 24, uses: 1, agentName: '' } })
  const invalidate = () => qc.invalidateQueries({ queryKey: trpc.joinTokens.pathKey() })
  const create = useMutation(trpc.joinTokens.create.mutationOptions({ onSuccess: invalidate }))
  const revoke = useMutation(trpc.joinTokens.revoke.mutationOptions({ onSuccess: invalidate }))
  const [created, setCreated] = useState<{ token: string; agentName: string } | null>(null)
  const server = agentServer ?? `ws://${host}:${bffPort}`
  const errors = form.formState.errors

  return (
    <Panel title="Join tokens" testId="join-tokens">
      <div className="border-b border-slate-100 p-4">
        <form
          className="grid items-start gap-3 sm:grid-cols-[minmax(0,2fr)_7rem_6rem_minmax(0,1fr)_auto]"
          onSubmit={form.handleSubmit((v) =>
            create.mutate(
              { description: v.description.trim(), ttlHours: v.ttlHours, uses: v.uses },
              { onSuccess: (res) => setCreated({ token: res.token, agentName: v.agentName.trim() || 'NAME' }) },
            ),
          )}
          noValidate
        >
          <Field label="Description" htmlFor="jt-desc" error={errors.description?.message}>
            <input
              id="jt-desc"
              className={inputCls}
              placeholder="rack 3, second server"
              aria-invalid={!!errors.description}
              {...form.register('description', { validate: (v) => (v.trim() ? true : 'Required') })}
            />
          </Field>
          <Field label="Valid (hours)" htmlFor="jt-ttl" error={errors.ttlHours?.message}>
            <input
              id="jt-ttl"
              type="number"
              min={1}
              className={inputCls}
              aria-invalid={!!errors.ttlHours}
              {...form.register('ttlHours', { valueAsNumber: true, validate: (v) => (Number.isInteger(v) && v >= 1 && v <= 8760 ? true : '1 to 8760 hours') })}
            />
          </Field>
          <Field label="Nodes (uses)" htmlFor="jt-uses" error={errors.uses?.message}>
            <input
              id="jt-uses"
              type="number"
              min={1}
              className={inputCls}
              aria-invalid={!!errors.uses}
              title="How many nodes may join with this token"
              data-testid="join-token-uses"
              {...form.register('uses', { valueAsNumber: true, validate: (v) => (Number.isInteger(v) && v >= 1 && v <= 100_000 ? true : '1 to 100,000') })}
            />
          </Field>
          <Field label="Node name (for the command)" htmlFor="jt-node">
            <input id="jt-node" className={inputCls} placeholder="node-2" {...form.register('agentName')} />
          </Field>
          <div className="pt-5">
            <Button type="submit" variant="primary" disabled={create.isPending} data-testid="create-join-token">
              Create token
            </Button>
          </div>
        </form>
        <ErrorBox error={create.error} className="mt-3" />
        {created ? (
          <div className="mt-4 rounded-md border border-amber-300 bg-amber-50 p-3" data-testid="new-join-token">
            <div className="mb-2 flex items-center justify-between gap-2">
              <p className="text-sm font-medium text-amber-900">Copy the token now: it is shown only once. Run this on the new node:</p>
              <Button size="sm" variant="ghost" onClick={() => setCreated(null)}>
                Dismiss
              </Button>
            </div>
            <div className="flex items-start gap-2">
              <pre className="min-w-0 flex-1 overflow-x-auto rounded bg-slate-900 px-3 py-2 font-mono text-[12px] text-slate-100" data-testid="agent-command">
                npx alveary-agent --server {server} --join-token {created.token} --name {created.agentName}
              </pre>
              <CopyButton text={`npx alveary-agent --server ${server} --join-token ${created.token} --name ${created.agentName}`} />
            </div>
            <p className="mt-2 text-xs text-amber-900/80">
              Token:{' '}
              <Mono className="select-all text-amber-950" data-testid="join-token-value">
                {created.token}
              </Mono>
            </p>
          </div>
        ) : null}
      </div>
      <DataTable
        query={tokens}
        error={tokens.error ?? revoke.error}
        testId="join-tokens-table"
        columns={[{ label: 'Description' }, { label: 'Prefix' }, { label: 'Status' }, { label: 'Uses', className: 'text-right' }, { label: 'Left', className: 'text-right' }, { label: 'Created' }, { label: 'Expires' }, {}]}
        empty={tokens.data?.length === 0 ? 'No join tokens.' : null}
      >
        {tokens.data?.map((t) => {
          const expired = now !== null && new Date(t.expiresAt).getTime() <= now
          const left = Math.max(0, t.maxUses - t.uses)
          const status = t.revoked ? 'revoked' : expired ? 'expired' : left === 0 ? 'used up' : 'active'
          return (
            <tr key={t.id} className={trCls} data-testid="join-token-row" data-status={status} data-uses-left={left}>
              <td className={`${tdCls} text-slate-800`}>
                {t.rekeyNode ? (
                  <Link href={`/ops/nodes/${t.rekeyNode.id}`} className="hover:underline">
                    <Badge tone="amber">re-key</Badge> {t.rekeyNode.name}
                  </Link>
                ) : (
                  t.description
                )}
                {t.createdBy ? <span className="block text-[11px] text-slate-500">by {t.createdBy}</span> : null}
              </td>
              <td className={tdCls}>
                <Mono>{t.prefix}…</Mono>
              </td>
              <td className={tdCls}>
                <Badge tone={status === 'active' ? 'green' : status === 'revoked' ? 'red' : 'gray'}>{status}</Badge>
              </td>
              <td className={`${tdCls} text-right`}>
                {t.uses} / {t.maxUses}
              </td>
              <td className={`${tdCls} text-right font-medium`} data-testid="join-token-left">
                {status === 'active' ? left : '—'}
              </td>
              <td className={`${tdCls} text-slate-500`}>
                <RelTime date={t.createdAt} />
              </td>
              <td className={`${tdCls} text-slate-500`}>
                <RelTime date={t.expiresAt} />
              </td>
              <td className={`${tdCls} text-right`}>
                {status === 'active' ? (
                  <ConfirmButton size="sm" label="Revoke" question="Revoke this token?" pending={revoke.isPending} onConfirm={() => revoke.mutate({ id: t.id })} testId="revoke-token" />
                ) : null}
              </td>
            </tr>
          )
        })}
      </DataTable>
    </Panel>
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
