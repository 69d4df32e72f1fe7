'use client'
import { useQuery } from '@tanstack/react-query'
import Link from 'next/link'
import type { ReactNode } from 'react'
import { Badge, KV, Mono, Panel } from '@/components/ui'
import { fmtCpu, fmtMem } from '@/lib/format'
import { useTenant } from '@/lib/session'
import { useTRPC, type TAppDetail } from '@/lib/trpc'

const SPREAD_TITLE: Record<string, string> = {
  none: 'replicas may share a node freely',
  soft: 'replicas prefer different nodes',
  hard: 'never two replicas on one node',
}

type Probe = NonNullable<TAppDetail['spec']['ports'][number]['readiness']>
const probeText = (p: Probe) =>
  `${p.type === 'http' ? `HTTP GET ${p.path} → ${p.expectStatus}` : 'TCP connect'} every ${p.intervalSeconds}s, ${p.failureThreshold} ${p.failureThreshold === 1 ? 'failure' : 'failures'} to fail${p.initialDelaySeconds ? `, from ${p.initialDelaySeconds}s after start` : ''}`

/** The app's current revision as asked: what runs, with which limits, where and how it is placed. */
export function SpecPanel({ app: a }: { app: TAppDetail }) {
  const trpc = useTRPC()
  const tenant = useTenant()
  const tenantInfo = useQuery(trpc.tenants.get.queryOptions({ tenantId: tenant.id }, { staleTime: 60_000 }))
  return (
    <Panel title="Spec" bodyClassName="p-4" testId="app-spec">
      <KV
        items={[
          ['Driver', <Badge key="d" tone={a.spec.driver === 'docker' ? 'blue' : 'violet'}>{a.spec.driver}</Badge>],
          ...(a.spec.image ? [['Image', <Mono key="i">{a.spec.image}</Mono>] as [string, ReactNode]] : []),
          [
            'Command',
            a.spec.command || a.spec.args.length ? (
              <Mono key="c" className="break-all">
                {[a.spec.command ?? '', ...a.spec.args.map((x) => (/\s/.test(x) || x === '' ? JSON.stringify(x) : x))].join(' ').trim()}
              </Mono>
            ) : (
              <span className="text-slate-400">image default</span>
            ),
          ],
          [
            'Resources',
            <span key="r" className="tabular-nums" data-testid="spec-limits">
              {fmtCpu(a.spec.cpuMillis)} CPU · {fmtMem(a.spec.memoryMb)} · {a.spec.pidsMax === null ? 'node default' : a.spec.pidsMax} pids per replica
              {a.spec.readOnlyRootfs ? ' · read-only root' : ''}
            </span>,
          ],
          ['Ports', a.spec.ports.length ? a.spec.ports.map((p) => (p.containerPort ? `${p.name}:${p.containerPort}` : p.name)).join(', ') : <span className="text-slate-400">none</span>],
          [
            'Health checks',
            a.spec.ports.some((p) => p.readiness || p.liveness) ? (
              <div key="hc" className="space-y-0.5" data-testid="spec-health">
                {a.spec.ports.flatMap((p) =>
                  (
                    [
                      ['readiness', p.readiness, 'gates load balancers and rollouts'],
                      ['liveness', p.liveness, 'restarts the replica when it fails'],
                    ] as const
                  ).flatMap(([kind, probe, title]) =>
                    probe ? [
                      <div key={`${p.name}-${kind}`} title={title}>
                        <span className="font-medium">{kind}</span> on {p.name}: {probeText(probe)}
                      </div>,
                    ] : [],
                  ),
                )}
              </div>
            ) : (
              <span key="hc" className="text-slate-400" data-testid="spec-health" title="Without a readiness check a replica counts once it has been running for the minimum ready time">
                none
              </span>
            ),
          ],
          [
            'Restart',
            <span key="rp">
              {a.spec.restartPolicy.replace('_', ' ')} · stop grace {a.spec.stopGraceSeconds}s
            </span>,
          ],
          [
            'Node selector',
            Object.keys(a.spec.nodeSelector).length ? (
              <div key="ns" className="flex flex-wrap gap-1" data-testid="spec-node-selector">
                {Object.entries(a.spec.nodeSelector).map(([k, v]) => (
                  <Mono key={k} className="rounded bg-slate-100 px-1.5 py-0.5">
                    {k}={v}
                  </Mono>
                ))}
              </div>
            ) : (
              <span key="ns" className="text-slate-400" data-testid="spec-node-selector">
                any node
              </span>
            ),
          ],
          [
            'Scheduling',
            <span key="sc" className="flex flex-wrap items-center gap-x-1.5 gap-y-1" data-testid="spec-scheduling">
              <span title={SPREAD_TITLE[a.spec.spread]} data-testid="spec-spread">
                {a.spec.spread} spread
              </span>
              <span className="text-slate-300">·</span>
              <span data-testid="spec-placement">
                {a.spec.placementStrategy ?? `tenant default${tenantInfo.data ? ` (${tenantInfo.data.placementStrategy})` : ''}`} placement
              </span>
              <span className="text-slate-300">·</span>
              <Badge tone={a.spec.priorityClass === 'critical' ? 'red' : a.spec.priorityClass === 'high' ? 'amber' : 'gray'} data-testid="spec-priority">
                {a.spec.priorityClass} priority
              </Badge>
            </span>,
          ],
          [
            'Network',
            a.network ? (
              <Link key="net" href={`/t/${tenant.slug}/networks`} className="text-sky-700 hover:underline" data-testid="spec-network" title="Its instances keep their address on this network across restarts and moves">
                {a.network.name}
              </Link>
            ) : (
              <span key="net" className="text-slate-400" data-testid="spec-network">
                host networking
              </span>
            ),
          ],
          [
            'Drains',
            <span key="mu" data-testid="spec-max-unavailable">
              at most {a.spec.maxUnavailable} {a.spec.maxUnavailable === 1 ? 'replica' : 'replicas'} unavailable at once
            </span>,
          ],
          [
            'Volumes',
            a.spec.volumes.length ? (
              <span key="vol" data-testid="spec-volumes">
                {a.spec.volumes.map((v) => `${v.name} ${fmtMem(v.sizeMb)} ${v.driver} at ${v.mountPath}`).join(', ')}
              </span>
            ) : (
              <span key="vol" className="text-slate-400">
                none{a.spec.stopAfterDisconnect ? ' · stops after disconnect' : ''}
              </span>
            ),
          ],
          [
            'Environment',
            Object.keys(a.spec.env).length ? (
              <div key="e" className="flex flex-wrap gap-1">
                {Object.entries(a.spec.env).map(([k, v]) => (
                  <Mono key={k} className="rounded bg-slate-100 px-1.5 py-0.5" title={`${k}=${v}`}>
                    {k}={v.length > 24 ? `${v.slice(0, 24)}…` : v}
                  </Mono>
                ))}
              </div>
            ) : (
              <span className="text-slate-400">none</span>
            ),
          ],
        ]}
      />
    </Panel>
  )
}
