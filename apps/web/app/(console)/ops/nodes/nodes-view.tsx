'use client'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import clsx from 'clsx'
import { useEffect, useState, type ReactNode } from 'react'
import { useForm } from 'react-hook-form'
import {
  Badge,
  Button,
  ConfirmButton,
  EmptyRow,
  ErrorBox,
  Field,
  inputBase,
  inputCls,
  Loading,
  Mono,
  PageHeader,
  Panel,
  RelTime,
  StateBadge,
  tableCls,
  tdCls,
  theadCls,
  thCls,
  trCls,
} from '@/components/ui'
import { fmtCpu, fmtMem } from '@/lib/format'
import { useNow } from '@/lib/use-now'
import { useTRPC, type TNode, type TTenant } from '@/lib/trpc'

/** Capacity (track) vs allocated (blue) vs measured use (dark inner line). */
function ResourceCell({ cap, alloc, used, fmt }: { cap: number; alloc: number; used: number; fmt: (n: number) => string }) {
  const pct = (n: number) => (cap > 0 ? Math.min(100, (n / cap) * 100) : 0)
  const allocPct = pct(alloc)
  return (
    <div className="w-32">
      <div className="mb-1 flex items-baseline justify-between gap-2 text-xs tabular-nums">
        <span className="font-medium text-slate-800">{fmt(alloc)}</span>
        <span className="text-slate-400">of {fmt(cap)}</span>
      </div>
      <div className="relative h-2 w-full overflow-hidden rounded-full bg-slate-200" title={`allocated ${fmt(alloc)} · used ${fmt(used)} · capacity ${fmt(cap)}`}>
        <div className={clsx('absolute inset-y-0 left-0 rounded-full', allocPct >= 90 ? 'bg-red-400' : allocPct >= 75 ? 'bg-amber-400' : 'bg-sky-400')} style={{ width: `${allocPct}%` }} />
        <div className="absolute bottom-0 left-0 h-1 rounded-full bg-slate-800/70" style={{ width: `${pct(used)}%` }} />
      </div>
      <div className="mt-0.5 text-[11px] tabular-nums text-slate-500">{fmt(used)} used</div>
    </div>
  )
}

function NodeRow({ n, tenants }: { n: TNode; tenants: TTenant[] }) {
  const trpc = useTRPC()
  const qc = useQueryClient()
  const done = { onSuccess: () => qc.invalidateQueries({ queryKey: trpc.nodes.pathKey() }) }
  const cordon = useMutation(trpc.nodes.cordon.mutationOptions(done))
  const uncordon = useMutation(trpc.nodes.uncordon.mutationOptions(done))
  const dedicate = useMutation(trpc.nodes.setDedicatedTenant.mutationOptions(done))
  const drain = useMutation(trpc.nodes.drain.mutationOptions(done))
  const err = cordon.error ?? uncordon.error ?? dedicate.error ?? drain.error
  const behind = n.appliedGeneration < n.desiredGeneration
  return (
    <tr className={trCls} data-testid="node-row" data-node-name={n.name} data-state={n.state} data-schedulable={String(n.schedulable)} data-connected={String(n.connected)}>
      <td className={tdCls}>
        <div className="font-medium text-slate-900">{n.name}</div>
        <Mono className="text-[11px] text-slate-500">{n.address}</Mono>
      </td>
      <td className={tdCls}>
        <div className="flex flex-col items-start gap-1">
          <StateBadge state={n.state} label={n.state === 'ready' ? 'ready' : 'not ready'} testId="node-state" />
          <span className="inline-flex items-center gap-1.5 text-xs text-slate-500" data-testid="node-connected">
            <span className={clsx('size-1.5 rounded-full', n.connected ? 'bg-emerald-500' : 'bg-slate-300')} />
            {n.connected ? 'connected' : 'disconnected'}
          </span>
        </div>
      </td>
      <td className={tdCls}>
        <div className="flex flex-col items-start gap-1">
          {n.drain ? (
            <Badge tone="amber" dot pulse data-testid="node-draining">
              draining · {n.drain.remaining} left
            </Badge>
          ) : n.schedulable ? (
            <Badge tone="green">schedulable</Badge>
          ) : (
            <Badge tone="amber">cordoned</Badge>
          )}
          <div className="flex items-center gap-1">
            {n.schedulable ? (
              <Button size="sm" disabled={cordon.isPending} onClick={() => cordon.mutate({ nodeId: n.id })} data-testid="node-cordon">
                Cordon
              </Button>
            ) : (
              <Button size="sm" disabled={uncordon.isPending} onClick={() => uncordon.mutate({ nodeId: n.id })} data-testid="node-uncordon">
                Uncordon
              </Button>
            )}
            {!n.drain && n.allocated.instances > 0 ? (
              <ConfirmButton size="sm" label="Drain" confirmLabel="Drain" question={`Move ${n.allocated.instances} off?`} pending={drain.isPending} onConfirm={() => drain.mutate({ nodeId: n.id })} testId="node-drain" />
            ) : null}
          </div>
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
          {err ? <ErrorBox error={err} className="py-1 text-xs" /> : null}
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
      <td className={`${tdCls} text-slate-600`}>
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
  agentName: string
}

function JoinTokens({ agentServer, bffPort }: { agentServer: string | null; bffPort: string }) {
  const trpc = useTRPC()
  const qc = useQueryClient()
  const now = useNow()
  const tokens = useQuery(trpc.joinTokens.list.queryOptions())
  const [host, setHost] = useState('HOST')
  useEffect(() => setHost(window.location.hostname), [])
  const form = useForm<TokenForm>({ defaultValues: { description: '', ttlHours: 24, agentName: '' } })
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
          className="grid items-start gap-3 sm:grid-cols-[minmax(0,2fr)_7rem_minmax(0,1fr)_auto]"
          onSubmit={form.handleSubmit((v) =>
            create.mutate(
              { description: v.description.trim(), ttlHours: v.ttlHours },
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
              Token: <Mono className="select-all text-amber-950">{created.token}</Mono>
            </p>
          </div>
        ) : null}
      </div>
      <ErrorBox error={tokens.error ?? revoke.error} className="m-3" />
      {tokens.isPending ? (
        <Loading />
      ) : (
        <div className="overflow-x-auto">
          <table className={tableCls} data-testid="join-tokens-table">
            <thead className={theadCls}>
              <tr>
                <th className={thCls}>Description</th>
                <th className={thCls}>Prefix</th>
                <th className={thCls}>Status</th>
                <th className={`${thCls} text-right`}>Uses</th>
                <th className={thCls}>Created</th>
                <th className={thCls}>Expires</th>
                <th className={thCls} />
              </tr>
            </thead>
            <tbody>
              {tokens.data?.length === 0 ? <EmptyRow cols={7}>No join tokens.</EmptyRow> : null}
              {tokens.data?.map((t) => {
                const expired = now !== null && new Date(t.expiresAt).getTime() <= now
                const status = t.revoked ? 'revoked' : expired ? 'expired' : 'active'
                return (
                  <tr key={t.id} className={trCls} data-testid="join-token-row" data-status={status}>
                    <td className={`${tdCls} text-slate-800`}>{t.description}</td>
                    <td className={tdCls}>
                      <Mono>{t.prefix}…</Mono>
                    </td>
                    <td className={tdCls}>
                      <Badge tone={status === 'active' ? 'green' : status === 'revoked' ? 'red' : 'gray'}>{status}</Badge>
                    </td>
                    <td className={`${tdCls} text-right`}>{t.uses}</td>
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
            </tbody>
          </table>
        </div>
      )}
    </Panel>
  )
}

export function NodesView({ agentServer, bffPort }: { agentServer: string | null; bffPort: string }) {
  const trpc = useTRPC()
  const nodes = useQuery(trpc.nodes.list.queryOptions())
  const tenants = useQuery(trpc.tenants.list.queryOptions())
  const list = nodes.data ?? []
  const ready = list.filter((n) => n.state === 'ready').length
  const sum = (f: (n: TNode) => number) => list.reduce((s, n) => s + f(n), 0)
  return (
    <>
      <title>Nodes · Alveary</title>
      <PageHeader title="Nodes" subtitle="Machines that run instances, with what is allocated to and used on each." />
      <Panel className="mb-5">
        <div className="grid grid-cols-2 divide-slate-100 md:grid-cols-5 md:divide-x">
          <Stat label="Ready" value={`${ready} / ${list.length}`} sub={`${list.filter((n) => !n.schedulable).length} cordoned`} />
          <Stat label="Instances" value={sum((n) => n.allocated.instances)} sub="placed on nodes" />
          <Stat label="CPU allocated" value={fmtCpu(sum((n) => n.allocated.cpuMillis))} sub={`of ${fmtCpu(sum((n) => n.capacity.cpuMillis))}`} />
          <Stat label="Memory allocated" value={fmtMem(sum((n) => n.allocated.memoryMb))} sub={`of ${fmtMem(sum((n) => n.capacity.memoryMb))}`} />
          <Stat label="Measured use" value={fmtCpu(sum((n) => n.usage.cpuMillis))} sub={`${fmtMem(sum((n) => n.usage.memoryMb))} memory`} />
        </div>
      </Panel>
      <Panel title="Nodes" className="mb-5">
        {nodes.error ? <ErrorBox error={nodes.error} className="m-3" /> : null}
        {nodes.isPending ? (
          <Loading />
        ) : (
          <div className="overflow-x-auto">
            <table className={tableCls} data-testid="nodes-table">
              <thead className={theadCls}>
                <tr>
                  <th className={thCls}>Node</th>
                  <th className={thCls}>State</th>
                  <th className={thCls}>Scheduling</th>
                  <th className={thCls}>Drivers</th>
                  <th className={thCls}>CPU</th>
                  <th className={thCls}>Memory</th>
                  <th className={`${thCls} text-right`}>Inst.</th>
                  <th className={thCls}>Heartbeat</th>
                  <th className={thCls}>Agent</th>
                  <th className={thCls} title="applied / desired">
                    Gen.
                  </th>
                </tr>
              </thead>
              <tbody>
                {list.length === 0 ? <EmptyRow cols={10}>No nodes have joined yet. Create a join token below and start an agent with it.</EmptyRow> : null}
                {list.map((n) => (
                  <NodeRow key={n.id} n={n} tenants={tenants.data ?? []} />
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Panel>
      <JoinTokens agentServer={agentServer} bffPort={bffPort} />
    </>
  )
}
