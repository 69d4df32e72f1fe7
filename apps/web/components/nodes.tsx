'use client'
import { useMutation, useQueryClient } from '@tanstack/react-query'
import clsx from 'clsx'
import { relTime } from '@/lib/format'
import { useTRPC, type TNode } from '@/lib/trpc'
import { useNow } from '@/lib/use-now'
import { Badge, Button, ConfirmButton, ErrorBox, StateBadge } from './ui'

/** "last heartbeat 42s ago" (or "no heartbeat yet"), re-rendered every second. */
export function HeartbeatAge({ n, className }: { n: Pick<TNode, 'lastHeartbeatAt'>; className?: string }) {
  const now = useNow()
  if (!n.lastHeartbeatAt) return <span className={className}>no heartbeat yet</span>
  return (
    <span className={className} title={new Date(n.lastHeartbeatAt).toISOString()}>
      last heartbeat {now === null ? '' : relTime(n.lastHeartbeatAt, now)}
    </span>
  )
}

/** Ready (green) or NotReady (red, with the age of the last heartbeat), and the connection. */
export function NodeStateCell({ n }: { n: TNode }) {
  const notReady = n.state !== 'ready'
  return (
    <div className="flex flex-col items-start gap-1">
      <StateBadge state={n.state} label={notReady ? 'not ready' : 'ready'} testId="node-state" />
      {notReady ? <HeartbeatAge n={n} className="text-xs font-medium text-red-700" /> : null}
      <span className="inline-flex items-center gap-1.5 text-xs text-slate-500" data-testid="node-connected">
        <span className={clsx('size-1.5 rounded-full', n.connected ? 'bg-emerald-500' : 'bg-slate-300')} />
        {n.connected ? 'connected' : 'disconnected'}
      </span>
    </div>
  )
}

export function drainText(remaining: number): string {
  if (remaining === 0) return 'draining — stopping the last instances'
  return `draining — ${remaining} ${remaining === 1 ? 'instance' : 'instances'} left`
}

/** Draining (with what is left), cordoned, or schedulable. */
export function SchedulingBadge({ n }: { n: TNode }) {
  if (n.drain)
    return (
      <Badge tone="amber" dot pulse data-testid="node-draining" data-remaining={String(n.drain.remaining)}>
        {drainText(n.drain.remaining)}
      </Badge>
    )
  if (!n.schedulable)
    return (
      <Badge tone="amber" data-testid="node-scheduling">
        cordoned
      </Badge>
    )
  return (
    <Badge tone="green" data-testid="node-scheduling">
      schedulable
    </Badge>
  )
}

/** Cordon / uncordon, and drain behind a confirmation. */
export function NodeActions({ n, size = 'sm', wide = false }: { n: TNode; size?: 'sm' | 'md'; wide?: boolean }) {
  const trpc = useTRPC()
  const qc = useQueryClient()
  const done = { onSuccess: () => qc.invalidateQueries({ queryKey: trpc.nodes.pathKey() }) }
  const cordon = useMutation(trpc.nodes.cordon.mutationOptions(done))
  const uncordon = useMutation(trpc.nodes.uncordon.mutationOptions(done))
  const drain = useMutation(trpc.nodes.drain.mutationOptions(done))
  const err = cordon.error ?? uncordon.error ?? drain.error
  const count = n.allocated.instances
  return (
    <div className="flex flex-col items-start gap-1">
      <div className="flex flex-wrap items-center gap-1">
        {n.schedulable ? (
          <Button size={size} disabled={cordon.isPending} onClick={() => cordon.mutate({ nodeId: n.id })} data-testid="node-cordon" title="No new instances are placed here; running ones stay">
            Cordon
          </Button>
        ) : (
          <Button size={size} disabled={uncordon.isPending} onClick={() => uncordon.mutate({ nodeId: n.id })} data-testid="node-uncordon" title={n.drain ? 'Stops the drain and lets instances be placed here again' : 'Lets instances be placed here again'}>
            Uncordon
          </Button>
        )}
        {/* Draining a cordoned node that holds nothing would do nothing. */}
        {!n.drain && (n.schedulable || count > 0) ? (
          <ConfirmButton
            size={size}
            label="Drain"
            confirmLabel="Drain"
            question={
              <span className="whitespace-nowrap">
                {count > 0
                  ? wide
                    ? `Cordon ${n.name} and move its ${count} ${count === 1 ? 'instance' : 'instances'} to other nodes?`
                    : `Move ${count} off?`
                  : `Cordon ${n.name}?`}
              </span>
            }
            pending={drain.isPending}
            onConfirm={() => drain.mutate({ nodeId: n.id })}
            testId="node-drain"
          />
        ) : null}
      </div>
      {err ? <ErrorBox error={err} className="py-1 text-xs" /> : null}
    </div>
  )
}

/** Capacity (track) vs allocated (blue) vs measured use (dark inner line). */
/** Whether the node serves the platform's load balancers (only where its agent has an LB driver). */
export function NodeLbToggle({ n }: { n: TNode }) {
  const trpc = useTRPC()
  const qc = useQueryClient()
  const setLb = useMutation(trpc.loadBalancers.setNode.mutationOptions({ onSuccess: () => qc.invalidateQueries({ queryKey: trpc.nodes.pathKey() }) }))
  if (!n.lbDriver) return <span className="text-xs text-slate-400">no load-balancer driver on this node</span>
  return (
    <>
      <label className="flex items-center gap-1.5 text-xs text-slate-600" title={`Serve the platform's load balancers on this node (${n.lbDriver})`}>
        <input type="checkbox" checked={n.loadBalancing} disabled={setLb.isPending} onChange={(e) => setLb.mutate({ nodeId: n.id, enabled: e.target.checked })} data-testid="node-lb" />
        load balancing <span className="text-slate-400">({n.lbDriver})</span>
      </label>
      {setLb.error ? <ErrorBox error={setLb.error} className="py-1 text-xs" /> : null}
    </>
  )
}

export function ResourceCell({ cap, alloc, used, fmt }: { cap: number; alloc: number; used: number; fmt: (n: number) => string }) {
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

/** Capacity vs allocated vs used of one resource, as two labelled bars over the capacity. */
export function CapacityBars({ label, cap, alloc, used, fmt, testId }: { label: string; cap: number; alloc: number; used: number; fmt: (n: number) => string; testId?: string }) {
  const pct = (n: number) => (cap > 0 ? (n / cap) * 100 : 0)
  const allocPct = pct(alloc)
  const rows = [
    { key: 'allocated', name: 'Allocated', value: alloc, p: allocPct, color: allocPct >= 90 ? 'bg-red-500' : allocPct >= 75 ? 'bg-amber-500' : 'bg-sky-500' },
    { key: 'used', name: 'Used', value: used, p: pct(used), color: 'bg-slate-700' },
  ]
  return (
    <div data-testid={testId}>
      <div className="mb-2 flex items-baseline justify-between gap-2">
        <span className="text-xs font-medium uppercase tracking-wide text-slate-500">{label}</span>
        <span className="text-sm tabular-nums text-slate-500">
          capacity <span className="font-semibold text-slate-900">{fmt(cap)}</span>
        </span>
      </div>
      <div className="space-y-1.5">
        {rows.map((r) => (
          <div key={r.key} className="grid grid-cols-[5rem_1fr_7.5rem] items-center gap-3 text-xs tabular-nums" data-testid={testId ? `${testId}-${r.key}` : undefined}>
            <span className="text-slate-600">{r.name}</span>
            <div className="h-2 overflow-hidden rounded-full bg-slate-200" role="meter" aria-label={`${label} ${r.name.toLowerCase()}`} aria-valuenow={r.value} aria-valuemin={0} aria-valuemax={cap}>
              <div className={clsx('h-full rounded-full transition-[width] duration-500', r.color)} style={{ width: `${Math.min(100, r.p)}%` }} />
            </div>
            <span className="text-right">
              <span className="font-medium text-slate-800">{fmt(r.value)}</span> <span className="text-slate-400">{r.p < 1 && r.value > 0 ? '<1' : Math.round(r.p)}%</span>
            </span>
          </div>
        ))}
      </div>
    </div>
  )
}

/**
 * Re-key: revokes the node's credential now (its agent is disconnected) and shows, once, a
 * one-use token with which the node's agent takes the node over under a new credential.
 */
export function RekeyPanel({ n }: { n: TNode }) {
  const trpc = useTRPC()
  const qc = useQueryClient()
  const rekey = useMutation(
    trpc.nodes.rekey.mutationOptions({
      onSuccess: () => {
        void qc.invalidateQueries({ queryKey: trpc.nodes.pathKey() })
        void qc.invalidateQueries({ queryKey: trpc.joinTokens.pathKey() })
      },
    }),
  )
  const command = rekey.data ? `npx alveary-agent --join-token ${rekey.data.token} --name ${n.name} …` : null
  return (
    <div className="space-y-3 text-sm" data-testid="node-rekey">
      <p className="text-slate-600">
        Re-key when the node lost its credential (reinstalled) or it may have leaked. The current credential stops working at once and the agent is disconnected;
        a one-use token, valid for an hour, lets the node&apos;s agent take it over with a new credential. A plain join can never take over an existing node.
      </p>
      {rekey.data ? (
        <div className="rounded-md border border-amber-300 bg-amber-50 p-3" data-testid="rekey-result">
          <p className="mb-2 text-sm font-medium text-amber-900">Credential revoked. Start the agent of {n.name} with this token (shown only once), keeping its other flags:</p>
          <pre className="overflow-x-auto rounded bg-slate-900 px-3 py-2 font-mono text-[12px] text-slate-100" data-testid="rekey-command">
            {command}
          </pre>
          <p className="mt-2 text-xs text-amber-900/80">
            Token:{' '}
            <code className="select-all font-mono text-amber-950" data-testid="rekey-token">
              {rekey.data.token}
            </code>
          </p>
        </div>
      ) : (
        <ConfirmButton
          label="Re-key…"
          confirmLabel="Revoke and re-key"
          question={<span className="whitespace-nowrap">Revoke {n.name}&apos;s credential now?</span>}
          pending={rekey.isPending}
          onConfirm={() => rekey.mutate({ nodeId: n.id })}
          testId="node-rekey-button"
        />
      )}
      {rekey.error ? <ErrorBox error={rekey.error} className="py-1 text-xs" /> : null}
    </div>
  )
}
