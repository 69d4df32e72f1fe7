'use client'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import Link from 'next/link'
import { useEffect, useState } from 'react'
import { useForm } from 'react-hook-form'
import { DataTable } from '@/components/data-table'
import { Badge, Button, ConfirmButton, ErrorBox, Field, inputCls, Mono, Panel, RelTime, tdCls, trCls } from '@/components/ui'
import { useNow } from '@/lib/use-now'
import { useTRPC } from '@/lib/trpc'

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

/** Join tokens for new agents: create one (the agent command to run is shown once), see their uses, revoke. */
export function JoinTokens({ agentServer, bffPort }: { agentServer: string | null; bffPort: string }) {
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
