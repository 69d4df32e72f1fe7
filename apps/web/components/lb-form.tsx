'use client'
/** The settings of a load balancer (listeners, rules, targets, balancing, stickiness, drain), for creating one and for editing it. */
import { useState, type ReactNode } from 'react'
import type { TLbSettings } from '@alveary/core/schemas'
import { Button, Field, inputCls } from '@/components/ui'
import type { TLoadBalancer } from '@/lib/trpc'

interface TargetDraft {
  appId: string
  port: string
  weight: string
}
interface RuleDraft {
  host: string
  pathPrefix: string
  targets: TargetDraft[]
}
interface ListenerDraft {
  protocol: 'http' | 'tcp'
  port: string
  rules: RuleDraft[]
}
const emptyTarget = (): TargetDraft => ({ appId: '', port: 'http', weight: '100' })
const emptyRule = (): RuleDraft => ({ host: '', pathPrefix: '', targets: [emptyTarget()] })
const emptyListener = (): ListenerDraft => ({ protocol: 'http', port: '', rules: [emptyRule()] })

const draftOf = (lb: TLoadBalancer): ListenerDraft[] =>
  lb.listeners.map((l) => ({
    protocol: l.protocol,
    port: String(l.port),
    rules: l.rules.map((r) => ({ host: r.host ?? '', pathPrefix: r.pathPrefix ?? '', targets: r.targets.map((t) => ({ appId: t.appId, port: t.port, weight: String(t.weight) })) })),
  }))

export function LbForm({
  initial,
  apps,
  pending,
  submitLabel,
  onSubmit,
  header,
  footer,
  canSubmit = true,
  submitTestId,
  testId,
}: {
  /** Editing: the load balancer's current settings. */
  initial?: TLoadBalancer
  apps: readonly { id: string; name: string }[]
  pending: boolean
  submitLabel: string
  onSubmit(settings: TLbSettings): void
  /** Fields before the settings (the name, when creating). */
  header?: ReactNode
  /** After the buttons (the mutation's error). */
  footer?: ReactNode
  canSubmit?: boolean
  submitTestId: string
  testId?: string
}) {
  const [listeners, setListeners] = useState<ListenerDraft[]>(() => (initial ? draftOf(initial) : [emptyListener()]))
  const [algorithm, setAlgorithm] = useState<'roundrobin' | 'leastconn'>(initial?.algorithm ?? 'roundrobin')
  const [sticky, setSticky] = useState(initial?.stickySeconds ? String(initial.stickySeconds) : '')
  const [drain, setDrain] = useState(String(initial?.drainSeconds ?? 10))
  const [retry, setRetry] = useState(initial?.retryUnanswered ?? false)
  const id = (s: string) => `${testId ?? 'lb'}-${s}`

  const setListener = (li: number, f: (l: ListenerDraft) => ListenerDraft) => setListeners((ls) => ls.map((l, i) => (i === li ? f(l) : l)))
  const setRule = (li: number, ri: number, f: (r: RuleDraft) => RuleDraft) => setListener(li, (l) => ({ ...l, rules: l.rules.map((r, i) => (i === ri ? f(r) : r)) }))
  const setTarget = (li: number, ri: number, ti: number, patch: Partial<TargetDraft>) =>
    setRule(li, ri, (r) => ({ ...r, targets: r.targets.map((t, i) => (i === ti ? { ...t, ...patch } : t)) }))

  const submit = () =>
    onSubmit({
      algorithm,
      stickySeconds: sticky ? Number(sticky) : null,
      drainSeconds: Number(drain || 0),
      retryUnanswered: retry,
      listeners: listeners.map((l) => ({
        protocol: l.protocol,
        ...(l.port ? { port: Number(l.port) } : {}),
        rules: (l.protocol === 'tcp' ? l.rules.slice(0, 1) : l.rules).map((r) => ({
          host: l.protocol === 'http' && r.host ? r.host : null,
          pathPrefix: l.protocol === 'http' && r.pathPrefix ? r.pathPrefix : null,
          targets: r.targets.map((t) => ({ appId: t.appId, port: t.port, weight: Number(t.weight || 0) })),
        })),
      })),
    })

  return (
    <form
      className="grid gap-4 p-4 sm:grid-cols-6"
      onSubmit={(e) => {
        e.preventDefault()
        submit()
      }}
      data-testid={testId}
    >
      {header}
      <Field label="Balancing" htmlFor={id('algo')}>
        <select id={id('algo')} className={inputCls} value={algorithm} onChange={(e) => setAlgorithm(e.target.value as 'roundrobin' | 'leastconn')}>
          <option value="roundrobin">round robin</option>
          <option value="leastconn">least connections</option>
        </select>
      </Field>
      <Field label="Sticky (s)" htmlFor={id('sticky')} hint="1–86,400; empty: none.">
        <input id={id('sticky')} type="number" className={inputCls} value={sticky} onChange={(e) => setSticky(e.target.value)} data-testid="lb-sticky" />
      </Field>
      <Field label="Drain (s)" htmlFor={id('drain')} hint="How long a leaving instance keeps its connections.">
        <input id={id('drain')} type="number" className={inputCls} value={drain} onChange={(e) => setDrain(e.target.value)} data-testid="lb-drain" />
      </Field>
      <Field label="Retry unanswered" htmlFor={id('retry')} hint="GET, HEAD, OPTIONS an instance closed without answering go to another (HTTP; costs HAProxy a copy of each request).">
        <input id={id('retry')} type="checkbox" checked={retry} onChange={(e) => setRetry(e.target.checked)} data-testid="lb-retry" />
      </Field>
      {listeners.map((l, li) => (
        <div key={li} className="space-y-2 rounded-md p-3 ring-1 ring-slate-200 sm:col-span-6" data-testid="lb-listener">
          <div className="flex flex-wrap items-end gap-3">
            <Field label="Protocol" htmlFor={id(`proto-${li}`)}>
              <select id={id(`proto-${li}`)} className={inputCls} value={l.protocol} onChange={(e) => setListener(li, (x) => ({ ...x, protocol: e.target.value as 'http' | 'tcp' }))}>
                <option value="http">HTTP</option>
                <option value="tcp">TCP</option>
              </select>
            </Field>
            <Field label="Port" htmlFor={id(`port-${li}`)} hint="Empty: the platform picks one.">
              <input id={id(`port-${li}`)} type="number" className={inputCls} value={l.port} onChange={(e) => setListener(li, (x) => ({ ...x, port: e.target.value }))} data-testid="lb-port" />
            </Field>
            {listeners.length > 1 ? (
              <Button type="button" onClick={() => setListeners((ls) => ls.filter((_, i) => i !== li))}>
                Remove listener
              </Button>
            ) : null}
          </div>
          <div className="text-xs font-medium text-slate-600">{l.protocol === 'http' ? 'Rules (first match wins; leave host and path empty for everything else)' : 'Target'}</div>
          {(l.protocol === 'tcp' ? l.rules.slice(0, 1) : l.rules).map((r, ri) => (
            <div key={ri} className="space-y-1 border-l-2 border-slate-100 pl-2" data-testid="lb-rule">
              {l.protocol === 'http' ? (
                <div className="grid gap-2 sm:grid-cols-6">
                  <input className={inputCls} placeholder="host (optional)" value={r.host} onChange={(e) => setRule(li, ri, (x) => ({ ...x, host: e.target.value }))} aria-label="Host" data-testid="lb-rule-host" />
                  <input
                    className={inputCls}
                    placeholder="/path prefix (optional)"
                    value={r.pathPrefix}
                    onChange={(e) => setRule(li, ri, (x) => ({ ...x, pathPrefix: e.target.value }))}
                    aria-label="Path prefix"
                    data-testid="lb-rule-path"
                  />
                  {l.rules.length > 1 ? (
                    <Button type="button" onClick={() => setListener(li, (x) => ({ ...x, rules: x.rules.filter((_, i) => i !== ri) }))}>
                      Remove rule
                    </Button>
                  ) : null}
                </div>
              ) : null}
              {r.targets.map((t, ti) => (
                <div key={ti} className="grid gap-2 sm:grid-cols-6" data-testid="lb-target">
                  <select className={inputCls} value={t.appId} onChange={(e) => setTarget(li, ri, ti, { appId: e.target.value })} aria-label="App" data-testid="lb-rule-app">
                    <option value="">choose an app</option>
                    {apps.map((a) => (
                      <option key={a.id} value={a.id}>
                        {a.name}
                      </option>
                    ))}
                  </select>
                  <label className="flex items-center gap-1.5 text-xs text-slate-500">
                    port
                    <input className={`${inputCls} min-w-0`} value={t.port} onChange={(e) => setTarget(li, ri, ti, { port: e.target.value })} aria-label="App port name" title="The app's port, by name" />
                  </label>
                  <label className="flex items-center gap-1.5 text-xs text-slate-500">
                    weight
                    <input
                      className={`${inputCls} min-w-0`}
                      type="number"
                      value={t.weight}
                      onChange={(e) => setTarget(li, ri, ti, { weight: e.target.value })}
                      aria-label="Weight"
                      title="Share of the traffic against the other targets of this rule"
                      data-testid="lb-target-weight"
                    />
                  </label>
                  {r.targets.length > 1 ? (
                    <Button type="button" onClick={() => setRule(li, ri, (x) => ({ ...x, targets: x.targets.filter((_, i) => i !== ti) }))}>
                      Remove target
                    </Button>
                  ) : null}
                </div>
              ))}
              <Button type="button" onClick={() => setRule(li, ri, (x) => ({ ...x, targets: [...x.targets, emptyTarget()] }))} data-testid="lb-add-target">
                Add target (split traffic)
              </Button>
            </div>
          ))}
          {l.protocol === 'http' ? (
            <Button type="button" onClick={() => setListener(li, (x) => ({ ...x, rules: [...x.rules, emptyRule()] }))} data-testid="lb-add-rule">
              Add rule
            </Button>
          ) : null}
        </div>
      ))}
      <div className="flex items-end gap-3 sm:col-span-6">
        {listeners.length < 8 ? (
          <Button type="button" onClick={() => setListeners((ls) => [...ls, emptyListener()])} data-testid="lb-add-listener">
            Add listener
          </Button>
        ) : null}
        <Button type="submit" variant="primary" disabled={pending || !canSubmit} data-testid={submitTestId}>
          {submitLabel}
        </Button>
      </div>
      {footer}
    </form>
  )
}
