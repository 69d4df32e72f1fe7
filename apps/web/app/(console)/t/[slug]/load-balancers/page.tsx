'use client'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { useState } from 'react'
import { Badge, Button, ConfirmButton, ErrorBox, Field, inputCls, Loading, Mono, PageHeader, Panel, RelTime, type Tone } from '@/components/ui'
import { useTenant } from '@/lib/session'
import { useTRPC, type TLoadBalancer } from '@/lib/trpc'

const STATE_TONE: Record<TLoadBalancer['state'], Tone> = { active: 'green', provisioning: 'blue', error: 'red', no_nodes: 'amber' }

interface RuleDraft {
  host: string
  pathPrefix: string
  appId: string
  port: string
  weight: string
}
const emptyRule = (): RuleDraft => ({ host: '', pathPrefix: '', appId: '', port: 'http', weight: '100' })

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

function LoadBalancerCard({ lb, apps, canDeploy }: { lb: TLoadBalancer; apps: Map<string, string>; canDeploy: boolean }) {
  const trpc = useTRPC()
  const tenant = useTenant()
  const qc = useQueryClient()
  const del = useMutation(trpc.loadBalancers.delete.mutationOptions({ onSuccess: () => qc.invalidateQueries({ queryKey: trpc.loadBalancers.pathKey() }) }))
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
          <ConfirmButton label="Delete" confirmLabel="Delete" question={`Delete ${lb.name}?`} onConfirm={() => del.mutate({ tenantId: tenant.id, lbId: lb.id })} pending={del.isPending} testId="lb-delete" />
        ) : null
      }
      className="mb-5"
      testId="lb"
      bodyClassName="space-y-3 p-4 text-sm"
    >
      {lb.message ? <div className="rounded-md bg-slate-50 px-3 py-2 text-xs text-slate-600 ring-1 ring-inset ring-slate-200">{lb.message}</div> : null}
      <ErrorBox error={del.error} />
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
                      {apps.get(t.appId) ?? 'deleted app'}:{t.port}
                      {r.targets.length > 1 ? <span className="text-slate-400"> (weight {t.weight})</span> : null}
                    </span>
                  ))}
                </li>
              ))}
            </ul>
          </div>
        ))}
      </div>
      <div className="text-xs text-slate-500">
        {lb.algorithm === 'roundrobin' ? 'round robin' : 'least connections'} · {lb.stickySeconds ? `sticky for ${lb.stickySeconds}s` : 'no stickiness'} · drains for {lb.drainSeconds}s · created <RelTime date={lb.createdAt} />
      </div>
    </Panel>
  )
}

/** Tenants' load balancers: stable addresses on the load-balancing nodes, created asynchronously. */
export default function LoadBalancersPage() {
  const trpc = useTRPC()
  const tenant = useTenant()
  const qc = useQueryClient()
  const list = useQuery(trpc.loadBalancers.list.queryOptions({ tenantId: tenant.id }))
  const appsQ = useQuery(trpc.apps.list.queryOptions({ tenantId: tenant.id }))
  const apps = new Map((appsQ.data ?? []).map((a) => [a.id, a.name]))
  const [name, setName] = useState('')
  const [protocol, setProtocol] = useState<'http' | 'tcp'>('http')
  const [port, setPort] = useState('')
  const [algorithm, setAlgorithm] = useState<'roundrobin' | 'leastconn'>('roundrobin')
  const [sticky, setSticky] = useState('')
  const [drain, setDrain] = useState('10')
  const [rules, setRules] = useState<RuleDraft[]>([emptyRule()])
  const create = useMutation(
    trpc.loadBalancers.create.mutationOptions({
      onSuccess: () => {
        setName('')
        setRules([emptyRule()])
        return qc.invalidateQueries({ queryKey: trpc.loadBalancers.pathKey() })
      },
    }),
  )
  const setRule = (k: number, patch: Partial<RuleDraft>) => setRules((rs) => rs.map((r, i) => (i === k ? { ...r, ...patch } : r)))
  const submit = () =>
    create.mutate({
      tenantId: tenant.id,
      name,
      algorithm,
      stickySeconds: sticky ? Number(sticky) : null,
      drainSeconds: Number(drain || 0),
      listeners: [
        {
          protocol,
          ...(port ? { port: Number(port) } : {}),
          rules: (protocol === 'tcp' ? rules.slice(0, 1) : rules).map((r) => ({
            host: protocol === 'http' && r.host ? r.host : null,
            pathPrefix: protocol === 'http' && r.pathPrefix ? r.pathPrefix : null,
            targets: [{ appId: r.appId, port: r.port, weight: Number(r.weight || 100) }],
          })),
        },
      ],
    })

  return (
    <>
      <title>{`Load balancers · ${tenant.name} · Alveary`}</title>
      <PageHeader title="Load balancers" subtitle="A stable address in front of your apps: host and path rules, balancing, stickiness, drains during rollouts." />
      {tenant.canDeploy ? (
        <Panel title="New load balancer" className="mb-5" testId="new-lb">
          <form
            className="grid gap-4 p-4 sm:grid-cols-6"
            onSubmit={(e) => {
              e.preventDefault()
              submit()
            }}
          >
            <Field label="Name" htmlFor="lb-name" className="sm:col-span-2">
              <input id="lb-name" className={inputCls} value={name} onChange={(e) => setName(e.target.value)} placeholder="front" data-testid="lb-name-input" />
            </Field>
            <Field label="Protocol" htmlFor="lb-proto">
              <select id="lb-proto" className={inputCls} value={protocol} onChange={(e) => setProtocol(e.target.value as 'http' | 'tcp')}>
                <option value="http">HTTP</option>
                <option value="tcp">TCP</option>
              </select>
            </Field>
            <Field label="Port" htmlFor="lb-port" hint="Empty: the platform picks one.">
              <input id="lb-port" type="number" className={inputCls} value={port} onChange={(e) => setPort(e.target.value)} />
            </Field>
            <Field label="Balancing" htmlFor="lb-algo">
              <select id="lb-algo" className={inputCls} value={algorithm} onChange={(e) => setAlgorithm(e.target.value as 'roundrobin' | 'leastconn')}>
                <option value="roundrobin">round robin</option>
                <option value="leastconn">least connections</option>
              </select>
            </Field>
            <Field label="Sticky (s)" htmlFor="lb-sticky" hint="1–86,400; empty: none.">
              <input id="lb-sticky" type="number" className={inputCls} value={sticky} onChange={(e) => setSticky(e.target.value)} />
            </Field>
            <div className="space-y-2 sm:col-span-6">
              <div className="text-xs font-medium text-slate-600">{protocol === 'http' ? 'Rules (first match wins; leave host and path empty for everything else)' : 'Target'}</div>
              {(protocol === 'tcp' ? rules.slice(0, 1) : rules).map((r, k) => (
                <div key={k} className="grid gap-2 sm:grid-cols-6" data-testid="lb-rule">
                  {protocol === 'http' ? (
                    <>
                      <input className={inputCls} placeholder="host (optional)" value={r.host} onChange={(e) => setRule(k, { host: e.target.value })} aria-label="Host" />
                      <input className={inputCls} placeholder="/path prefix (optional)" value={r.pathPrefix} onChange={(e) => setRule(k, { pathPrefix: e.target.value })} aria-label="Path prefix" />
                    </>
                  ) : null}
                  <select className={inputCls} value={r.appId} onChange={(e) => setRule(k, { appId: e.target.value })} aria-label="App" data-testid="lb-rule-app">
                    <option value="">choose an app</option>
                    {(appsQ.data ?? []).map((a) => (
                      <option key={a.id} value={a.id}>
                        {a.name}
                      </option>
                    ))}
                  </select>
                  <input className={inputCls} value={r.port} onChange={(e) => setRule(k, { port: e.target.value })} aria-label="App port name" />
                  <input className={inputCls} type="number" value={r.weight} onChange={(e) => setRule(k, { weight: e.target.value })} aria-label="Weight" title="Weight" />
                </div>
              ))}
              {protocol === 'http' ? (
                <Button type="button" onClick={() => setRules((rs) => [...rs, emptyRule()])}>
                  Add rule
                </Button>
              ) : null}
            </div>
            <Field label="Drain (s)" htmlFor="lb-drain" hint="How long a leaving instance keeps its connections.">
              <input id="lb-drain" type="number" className={inputCls} value={drain} onChange={(e) => setDrain(e.target.value)} />
            </Field>
            <div className="flex items-end sm:col-span-5">
              <Button type="submit" variant="primary" disabled={create.isPending || !name} data-testid="lb-create">
                Create load balancer
              </Button>
            </div>
            <ErrorBox error={create.error} className="sm:col-span-6" />
          </form>
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
