'use client'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { useState } from 'react'
import { LbForm } from '@/components/lb-form'
import { Badge, Button, ConfirmButton, ErrorBox, Field, inputCls, Loading, Mono, PageHeader, Panel, RelTime, type Tone } from '@/components/ui'
import { useTenant } from '@/lib/session'
import { useTRPC, type TLoadBalancer } from '@/lib/trpc'

const STATE_TONE: Record<TLoadBalancer['state'], Tone> = { active: 'green', provisioning: 'blue', error: 'red', no_nodes: 'amber' }

function CopyUrl({ url }: { url: string }) {
  const [copied, setCopied] = useState(false)
  return (
    <span className="inline-flex items-center gap-2">
      <a href={url} target="_blank" rel="noreferrer" className="font-mono text-[12px] text-sky-700 hover:underline" data-testid="lb-url">
        {url}
      </a>
      <button
        type="button"
        className="rounded px-1.5 py-0.5 text-[11px] text-slate-500 ring-1 ring-slate-200 hover:bg-slate-50"
        onClick={() => void navigator.clipboard?.writeText(url).then(() => setCopied(true))}
        data-testid="lb-copy"
      >
        {copied ? 'copied' : 'copy'}
      </button>
    </span>
  )
}

function LoadBalancerCard({ lb, apps, canDeploy }: { lb: TLoadBalancer; apps: readonly { id: string; name: string }[]; canDeploy: boolean }) {
  const trpc = useTRPC()
  const tenant = useTenant()
  const qc = useQueryClient()
  const names = new Map(apps.map((a) => [a.id, a.name]))
  const [editing, setEditing] = useState(false)
  const del = useMutation(trpc.loadBalancers.delete.mutationOptions({ onSuccess: () => qc.invalidateQueries({ queryKey: trpc.loadBalancers.pathKey() }) }))
  const update = useMutation(
    trpc.loadBalancers.update.mutationOptions({
      onSuccess: () => {
        setEditing(false)
        return qc.invalidateQueries({ queryKey: trpc.loadBalancers.pathKey() })
      },
    }),
  )
  return (
    <Panel
      title={
        <span className="flex items-center gap-2">
          <span data-testid="lb-name">{lb.name}</span>
          <Badge tone={STATE_TONE[lb.state]} dot pulse={lb.state === 'provisioning'} data-testid="lb-state">
            {lb.state.replace('_', ' ')}
          </Badge>
        </span>
      }
      actions={
        canDeploy ? (
          <span className="flex items-center gap-2">
            <Button onClick={() => setEditing((e) => !e)} data-testid="lb-edit">
              {editing ? 'Cancel' : 'Edit'}
            </Button>
            <ConfirmButton label="Delete" confirmLabel="Delete" question={`Delete ${lb.name}?`} onConfirm={() => del.mutate({ tenantId: tenant.id, lbId: lb.id })} pending={del.isPending} testId="lb-delete" />
          </span>
        ) : null
      }
      className="mb-5"
      testId="lb"
      bodyClassName="space-y-3 p-4 text-sm"
    >
      {lb.message ? <div className="rounded-md bg-slate-50 px-3 py-2 text-xs text-slate-600 ring-1 ring-inset ring-slate-200">{lb.message}</div> : null}
      <ErrorBox error={del.error} />
      {editing ? (
        <div className="-mx-4 border-y border-slate-100 bg-slate-50/50">
          <LbForm
            initial={lb}
            apps={apps}
            pending={update.isPending}
            submitLabel="Save changes"
            submitTestId="lb-save"
            testId={`edit-${lb.id}`}
            onSubmit={(settings) => update.mutate({ tenantId: tenant.id, lbId: lb.id, ...settings })}
            footer={<ErrorBox error={update.error} className="sm:col-span-6" />}
          />
        </div>
      ) : null}
      <div>
        <div className="mb-1 text-xs font-medium text-slate-500">Addresses</div>
        {lb.addresses.length ? (
          <ul className="space-y-1">
            {lb.addresses.map((a) => (
              <li key={`${a.node}${a.url}`} className="flex flex-wrap items-center gap-2">
                <CopyUrl url={a.url} />
                <span className="text-xs text-slate-400">on {a.node}</span>
                {a.state !== 'active' ? <Badge tone={a.state === 'error' ? 'red' : 'blue'}>{a.state}</Badge> : null}
                {a.message ? <span className="text-xs text-red-700">{a.message}</span> : null}
              </li>
            ))}
          </ul>
        ) : (
          <span className="text-slate-400">none yet</span>
        )}
      </div>
      <div>
        <div className="mb-1 text-xs font-medium text-slate-500">Listeners and rules</div>
        {lb.listeners.map((l) => (
          <div key={l.port} className="mb-2">
            <Mono className="font-medium">
              {l.protocol.toUpperCase()} :{l.port}
            </Mono>
            <ul className="mt-1 space-y-0.5 pl-3 text-xs text-slate-600">
              {l.rules.map((r, k) => (
                <li key={k}>
                  {r.host || r.pathPrefix ? (
                    <>
                      {r.host ? <Mono>{r.host}</Mono> : null}
                      {r.pathPrefix ? <Mono>{r.pathPrefix}</Mono> : null}
                    </>
                  ) : (
                    <span className="text-slate-400">everything else</span>
                  )}{' '}
                  →{' '}
                  {r.targets.map((t) => (
                    <span key={`${t.appId}${t.port}`} className="mr-2">
                      {names.get(t.appId) ?? 'deleted app'}:{t.port}
                      {r.targets.length > 1 ? <span className="text-slate-400"> (weight {t.weight})</span> : null}
                    </span>
                  ))}
                </li>
              ))}
            </ul>
          </div>
        ))}
      </div>
      <Servers lb={lb} />
      <div className="text-xs text-slate-500">
        {lb.algorithm === 'roundrobin' ? 'round robin' : 'least connections'} · {lb.stickySeconds ? `sticky for ${lb.stickySeconds}s` : 'no stickiness'} · drains for {lb.drainSeconds}s{lb.retryUnanswered ? ' · retries unanswered requests' : ''} · created <RelTime date={lb.createdAt} />
      </div>
    </Panel>
  )
}

const SERVER_STATE: Record<TLoadBalancer['servers'][number]['state'], { label: string; tone: Tone }> = {
  in_pool: { label: 'in pool', tone: 'green' },
  draining: { label: 'draining', tone: 'amber' },
  not_ready: { label: 'not ready', tone: 'gray' },
}

/** Every instance behind the load balancer: in the pool or not, and its traffic from the nodes' last samples. */
function Servers({ lb }: { lb: TLoadBalancer }) {
  if (!lb.servers.length) return null
  return (
    <div>
      <div className="mb-1 text-xs font-medium text-slate-500">Servers</div>
      <table className="w-full max-w-xl text-left text-xs tabular-nums" data-testid="lb-servers">
        <thead className="text-[11px] uppercase tracking-wide text-slate-400">
          <tr>
            <th className="py-1 pr-3 font-medium">instance</th>
            <th className="py-1 pr-3 font-medium">state</th>
            <th className="py-1 pr-3 text-right font-medium">in flight</th>
            <th className="py-1 text-right font-medium">per second</th>
          </tr>
        </thead>
        <tbody>
          {lb.servers.map((s) => (
            <tr key={s.instanceId} className="border-t border-slate-100" data-testid="lb-server" data-state={s.state}>
              <td className="py-1 pr-3">
                {s.app}-{s.ordinal} <Mono className="text-slate-400">{s.instanceId.slice(0, 8)}</Mono>
              </td>
              <td className="py-1 pr-3">
                <Badge tone={SERVER_STATE[s.state].tone}>{SERVER_STATE[s.state].label}</Badge>
              </td>
              <td className="py-1 pr-3 text-right">{s.current ?? '–'}</td>
              <td className="py-1 text-right" data-testid="lb-server-rate">
                {s.perSecond ?? '–'}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  )
}

/** Tenants' load balancers: stable addresses on the load-balancing nodes, created asynchronously. */
export default function LoadBalancersPage() {
  const trpc = useTRPC()
  const tenant = useTenant()
  const qc = useQueryClient()
  // Traffic figures change without an event: refreshed at the pace the nodes sample them.
  const list = useQuery({ ...trpc.loadBalancers.list.queryOptions({ tenantId: tenant.id }), refetchInterval: 5_000 })
  const appsQ = useQuery(trpc.apps.list.queryOptions({ tenantId: tenant.id }))
  const apps = (appsQ.data ?? []).map((a) => ({ id: a.id, name: a.name }))
  const [name, setName] = useState('')
  /** Remounts the form after a creation, so it starts empty again. */
  const [formKey, setFormKey] = useState(0)
  const create = useMutation(
    trpc.loadBalancers.create.mutationOptions({
      onSuccess: () => {
        setName('')
        setFormKey((k) => k + 1)
        return qc.invalidateQueries({ queryKey: trpc.loadBalancers.pathKey() })
      },
    }),
  )

  return (
    <>
      <title>{`Load balancers · ${tenant.name} · Alveary`}</title>
      <PageHeader title="Load balancers" subtitle="A stable address in front of your apps: host and path rules, balancing, stickiness, drains during rollouts." />
      {tenant.canDeploy ? (
        <Panel title="New load balancer" className="mb-5" testId="new-lb">
          <LbForm
            key={formKey}
            apps={apps}
            pending={create.isPending}
            canSubmit={!!name}
            submitLabel="Create load balancer"
            submitTestId="lb-create"
            testId="lb-new"
            onSubmit={(settings) => create.mutate({ tenantId: tenant.id, name, ...settings })}
            header={
              <Field label="Name" htmlFor="lb-name" className="sm:col-span-3">
                <input id="lb-name" className={inputCls} value={name} onChange={(e) => setName(e.target.value)} placeholder="front" data-testid="lb-name-input" />
              </Field>
            }
            footer={<ErrorBox error={create.error} className="sm:col-span-6" />}
          />
        </Panel>
      ) : null}
      {list.isPending ? <Loading /> : list.error ? <ErrorBox error={list.error} /> : null}
      {list.data?.length === 0 ? <Panel bodyClassName="p-6 text-sm text-slate-500">No load balancers yet.</Panel> : null}
      {(list.data ?? []).map((lb) => (
        <LoadBalancerCard key={lb.id} lb={lb} apps={apps} canDeploy={tenant.canDeploy} />
      ))}
    </>
  )
}
