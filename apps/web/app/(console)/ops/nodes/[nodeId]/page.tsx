'use client'
import { useQuery } from '@tanstack/react-query'
import clsx from 'clsx'
import Link from 'next/link'
import { useParams, useRouter } from 'next/navigation'
import { DataTable } from '@/components/data-table'
import { LastExitLine, OomBadge } from '@/components/last-exit'
import { CapacityBars, drainText, HeartbeatAge, NodeActions, NodeLbToggle, RekeyPanel, SchedulingBadge } from '@/components/nodes'
import { MoveButton, MovingBadge } from '@/components/moves'
import { NodeUsage } from '@/components/usage-chart'
import { Badge, ErrorBox, KV, Loading, Mono, PageHeader, Panel, RelTime, StateBadge, tdCls, trCls } from '@/components/ui'
import { fmtCpu, fmtMem, shortId } from '@/lib/format'
import { useTRPC, type TNode, type TNodeInstance } from '@/lib/trpc'

function InstanceRow({ i, address, stale, nodeId }: { i: TNodeInstance; address: string; stale: boolean; nodeId: string }) {
  const router = useRouter()
  const leaving = i.desiredState === 'stopped'
  const shown = leaving && i.state === 'running' ? 'stopping' : i.state
  return (
    <tr
      className={clsx(trCls, leaving && 'text-slate-400')}
      data-testid="node-instance-row"
      data-state={i.state}
      data-desired={i.desiredState}
      data-instance-id={i.id}
      data-tenant={i.tenant.slug}
      data-app={i.app.name}
    >
      <td className={tdCls}>
        <Link href={`/t/${i.tenant.slug}/apps`} className="font-mono text-[12px] text-slate-700 hover:underline">
          {i.tenant.slug}
        </Link>
      </td>
      <td className={tdCls}>
        <Link href={`/t/${i.tenant.slug}/apps/${i.app.id}`} className="font-medium text-slate-900 hover:underline">
          {i.app.name}
        </Link>
      </td>
      <td className={`${tdCls} text-slate-700`}>#{i.ordinal}</td>
      <td className={tdCls}>
        <Mono title={i.id}>{shortId(i.id)}</Mono>
      </td>
      <td className={tdCls}>
        {i.moving ? <MovingBadge step={i.moving.step} moveId={i.moving.moveId} /> : stale ? (
          // The node is silent: this is what it last reported, not what runs now.
          <span className="inline-flex items-center gap-1.5" title="The node is not ready: its last report">
            <StateBadge state={shown} testId="instance-state" tone="gray" />
            <span className="text-xs text-slate-500">last reported</span>
          </span>
        ) : (
          <span className="flex flex-wrap items-center gap-1.5">
            <StateBadge state={shown} testId="instance-state" />
            {i.lastExit?.reason === 'oomKilled' ? <OomBadge lastExit={i.lastExit} /> : null}
          </span>
        )}
      </td>
      <td className={tdCls}>
        {i.hostPorts.length ? (
          <div className="flex flex-wrap gap-x-2">
            {i.hostPorts.map((p) =>
              leaving ? (
                <Mono key={p} className="text-slate-400">
                  {p}
                </Mono>
              ) : (
                <a key={p} href={`http://${address}:${p}`} target="_blank" rel="noreferrer" className="font-mono text-[12px] text-sky-700 hover:underline">
                  {p}
                </a>
              ),
            )}
          </div>
        ) : (
          <span className="text-slate-400">—</span>
        )}
      </td>
      <td className={`${tdCls} text-right`}>{fmtCpu(i.cpuMillis)}</td>
      <td className={`${tdCls} text-right`}>{fmtMem(i.memoryMb)}</td>
      <td className={`${tdCls} text-right`}>{i.restarts > 0 ? <span className="font-medium text-amber-700">{i.restarts}</span> : 0}</td>
      <td className={`${tdCls} max-w-72`}>{i.lastExit ? <LastExitLine lastExit={i.lastExit} /> : <span className="text-slate-400">—</span>}</td>
      <td className={tdCls}>
        {i.volumes.length ? (
          <span className="text-xs text-slate-600" title="volumes move with the instance">
            {i.volumes.map((v) => `${v.name} (${v.driver})`).join(', ')}
          </span>
        ) : (
          <span className="text-slate-400">—</span>
        )}
      </td>
      <td className={`${tdCls} text-right`}>
        {!leaving && !i.moving && nodeId ? (
          <MoveButton instanceId={i.id} fromNodeId={nodeId} label={`${i.app.name}-${i.ordinal}`} onStarted={(m) => router.push(`/ops/moves#${m.id}`)} />
        ) : null}
      </td>
    </tr>
  )
}

function NodeInstances({ node }: { node: TNode }) {
  const trpc = useTRPC()
  // Refreshed live: every fleet hint about nodes (heartbeats included) invalidates nodes.*.
  const instances = useQuery(trpc.nodes.instances.queryOptions({ nodeId: node.id }))
  // Active first, then by tenant, app and ordinal (the API orders by ids).
  const list = [...(instances.data ?? [])].sort(
    (a, b) =>
      (a.desiredState === b.desiredState ? 0 : a.desiredState === 'running' ? -1 : 1) ||
      a.tenant.slug.localeCompare(b.tenant.slug) ||
      a.app.name.localeCompare(b.app.name) ||
      a.ordinal - b.ordinal,
  )
  const running = list.filter((i) => i.desiredState === 'running' && i.state === 'running').length
  const active = list.filter((i) => i.desiredState === 'running').length
  return (
    <Panel
      title={
        <>
          Instances on {node.name}{' '}
          <span className="font-normal text-slate-500" data-testid="node-instance-count" data-count={list.length} data-running={running}>
            ({list.length}
            {list.length ? ` · ${running} of ${active} running${node.state !== 'ready' ? ' when last reported' : ''}` : ''})
          </span>
        </>
      }
      className="mb-5"
      testId="node-instances"
    >
      <DataTable
        query={instances}
        testId="node-instances-table"
        columns={[
          { label: 'Tenant' },
          { label: 'App' },
          { label: '#', className: 'w-12' },
          { label: 'ID' },
          { label: 'State' },
          { label: 'Host ports' },
          { label: 'CPU', className: 'text-right' },
          { label: 'Memory', className: 'text-right' },
          { label: 'Restarts', className: 'text-right' },
          { label: 'Last exit' },
          { label: 'Volumes' },
          { label: '', className: 'text-right' },
        ]}
        empty={list.length === 0 ? 'Nothing is placed on this node.' : null}
      >
        {list.map((i) => (
          <InstanceRow key={i.id} i={i} address={node.address} stale={node.state !== 'ready'} nodeId={node.id} />
        ))}
      </DataTable>
    </Panel>
  )
}

/** Volume drivers, copies, self-fencing and live moves as the agent advertised them. */
function VolumeCapability({ n }: { n: TNode }) {
  const v = n.volume
  if (!v) return <span className="text-slate-400">not advertised</span>
  const item = (ok: boolean, label: string, why?: string) => (
    <Badge tone={ok ? 'green' : 'gray'} title={why}>
      {ok ? label : `no ${label}`}
    </Badge>
  )
  return (
    <div className="flex flex-wrap gap-1" data-testid="node-volume-capability">
      {v.drivers.map((d) => (
        <Badge key={d} tone="blue">
          {d}
        </Badge>
      ))}
      {item(v.copy !== null, 'copy (rsync)', v.copyReason)}
      {item(v.selfFence, 'self-fencing', v.selfFenceReason)}
      {item(v.checkpoint.ok, 'live moves', v.checkpoint.reason)}
    </div>
  )
}

/** What the agent can enforce around process instances (its sandbox probe). */
function SandboxCapability({ n }: { n: TNode }) {
  const s = n.sandbox
  if (!s || s.mode === 'unsandboxed')
    return (
      <span className="flex flex-wrap items-center gap-1" data-testid="node-sandbox" data-mode="unsandboxed">
        <Badge tone="amber" title={s?.reason ?? 'the agent does not say'}>
          process: unsandboxed
        </Badge>
        <span className="text-xs text-slate-600">{s?.reason ?? 'not advertised'} — only trusted tenants' process apps are placed here</span>
      </span>
    )
  return (
    <span className="flex flex-wrap items-center gap-1" data-testid="node-sandbox" data-mode="sandboxed">
      <Badge tone="green">process: sandboxed</Badge>
      <span className="text-xs text-slate-600">
        {s.tool}: tenant uid, no capabilities, own mount/PID/IPC/UTS namespaces · cgroup {s.cgroups} limits: {s.limits.join(', ')}
      </span>
      <span className="text-xs text-slate-600" data-testid="node-sandbox-network" data-network={s.network ?? 'node'}>
        ·{' '}
        {s.network === 'own'
          ? 'own network namespace (host-networking apps: the node’s loopback and services out of reach, published ports forwarded)'
          : 'host-networking apps share the node’s network namespace'}
      </span>
    </span>
  )
}

function ContainerCapability({ n }: { n: TNode }) {
  const c = n.containers
  if (!c) return null
  const how =
    c.usernsMode === 'auto'
      ? 'every container has a user namespace of its own: its root is an unprivileged host uid (Podman --userns=auto); volumes are given to the container’s user at each start'
      : c.rootless
        ? 'container root is an unprivileged host uid (rootless engine)'
        : 'container root is an unprivileged host uid (the engine remaps it)'
  return (
    <span className="flex flex-wrap items-center gap-1" data-testid="node-containers" data-userns={String(c.userns)}>
      <Badge tone={c.userns ? 'green' : 'gray'}>containers ({c.engine}): {c.userns ? 'user namespaces' : 'no user namespaces'}</Badge>
      <span className="text-xs text-slate-600">
        {c.userns ? how : `container root is host root with capabilities cut, no-new-privileges and a pids limit: ${c.reason ?? 'the engine does not remap users'}`}
      </span>
    </span>
  )
}

export default function NodeDetailPage() {
  const { nodeId } = useParams<{ nodeId: string }>()
  const trpc = useTRPC()
  const nodes = useQuery(trpc.nodes.list.queryOptions())
  const back = (
    <Link href="/ops/nodes" className="hover:underline">
      Nodes
    </Link>
  )
  if (nodes.isPending) return <Loading />
  if (nodes.error)
    return (
      <>
        <PageHeader title="Node" subtitle={back} />
        <ErrorBox error={nodes.error} />
      </>
    )
  const n = nodes.data.find((x) => x.id === nodeId)
  if (!n)
    return (
      <>
        <PageHeader title="Node" subtitle={back} />
        <Panel bodyClassName="p-6 text-sm text-slate-600">This node does not exist (any more).</Panel>
      </>
    )
  const notReady = n.state !== 'ready'
  const behind = n.appliedGeneration < n.desiredGeneration
  const labels = Object.entries(n.labels)
  return (
    <div data-testid="node-detail" data-node-name={n.name} data-state={n.state} data-schedulable={String(n.schedulable)} data-draining={String(!!n.drain)}>
      <title>{`${n.name} · Nodes · Alveary`}</title>
      <PageHeader
        title={<span data-testid="node-name">{n.name}</span>}
        badge={
          <span className="flex items-center gap-1.5">
            <StateBadge state={n.state} label={notReady ? 'not ready' : 'ready'} testId="node-state" />
            <SchedulingBadge n={n} />
          </span>
        }
        subtitle={
          <>
            {back} / {n.name} · <Mono className="text-slate-600">{n.address}</Mono> · {n.connected ? 'connected' : 'disconnected'}
          </>
        }
        actions={<NodeActions n={n} size="md" wide />}
      />

      {notReady ? (
        <div className="mb-4 rounded-md border border-red-200 bg-red-50 px-3 py-2 text-sm text-red-800" role="status" data-testid="node-not-ready">
          <span className="font-semibold">Not ready:</span> <HeartbeatAge n={n} />. Its instances are rescheduled on other nodes once the eviction grace period is over; a returning
          agent stops its stale copies.
        </div>
      ) : null}
      {n.drain ? (
        <div className="mb-4 rounded-md border border-amber-200 bg-amber-50 px-3 py-2 text-sm text-amber-900" role="status">
          <span className="font-semibold">{drainText(n.drain.remaining)}.</span> Instances move to other nodes, at most each app's max unavailable at a time. Uncordon to stop the
          drain.
        </div>
      ) : null}

      <div className="mb-5 grid gap-5 lg:grid-cols-[minmax(0,5fr)_minmax(0,7fr)]">
        <Panel title="Node" bodyClassName="p-4" testId="node-info">
          <KV
            items={[
              ['Address', <Mono key="a">{n.address}</Mono>],
              [
                'Heartbeat',
                <span key="h" className={notReady ? 'font-medium text-red-700' : undefined}>
                  <RelTime date={n.lastHeartbeatAt} />
                  {n.lastHeartbeatAt ? null : ' never'}
                </span>,
              ],
              [
                'Labels',
                labels.length ? (
                  <div key="l" className="flex flex-wrap gap-1" data-testid="node-labels">
                    {labels.map(([k, v]) => (
                      <Mono key={k} className="rounded bg-slate-100 px-1.5 py-0.5">
                        {k}={v}
                      </Mono>
                    ))}
                  </div>
                ) : (
                  <span className="text-slate-400">none</span>
                ),
              ],
              [
                'Drivers',
                <div key="d" className="flex flex-wrap gap-1">
                  {n.drivers.map((d) => (
                    <Badge key={d} tone={d === 'docker' ? 'blue' : 'gray'}>
                      {d}
                    </Badge>
                  ))}
                </div>,
              ],
              ['Volumes', <VolumeCapability key="vol" n={n} />],
              ['Load balancing', <NodeLbToggle key="lb" n={n} />],
              [
                'Isolation',
                <div key="sbx" className="space-y-1">
                  <SandboxCapability n={n} />
                  <ContainerCapability n={n} />
                </div>,
              ],
              ['Agent', <Mono key="v">{n.agentVersion || '—'}</Mono>],
              [
                'Generation',
                <span key="g" className={clsx('tabular-nums', behind && 'font-medium text-amber-700')} title="applied / desired generation of the node's workload">
                  {n.appliedGeneration} applied / {n.desiredGeneration} desired
                </span>,
              ],
              [
                'Tenants',
                n.dedicatedTenant ? (
                  <Badge key="t" tone="violet">
                    dedicated to {n.dedicatedTenant.slug}
                  </Badge>
                ) : (
                  <span key="t">all tenants</span>
                ),
              ],
            ]}
          />
        </Panel>
        <Panel title="Capacity" bodyClassName="space-y-5 p-4" testId="node-capacity">
          <CapacityBars label="CPU" cap={n.capacity.cpuMillis} alloc={n.allocated.cpuMillis} used={n.usage.cpuMillis} fmt={fmtCpu} testId="node-cpu" />
          <CapacityBars label="Memory" cap={n.capacity.memoryMb} alloc={n.allocated.memoryMb} used={n.usage.memoryMb} fmt={fmtMem} testId="node-memory" />
          <p className="text-xs text-slate-500">
            <span className="font-medium text-slate-700">Allocated</span> is what the {n.allocated.instances} {n.allocated.instances === 1 ? 'instance' : 'instances'} placed here
            requested; <span className="font-medium text-slate-700">used</span> is what the agent measures
            {notReady ? <span className="font-medium text-red-700"> (last reported: the node is not ready)</span> : null}.
          </p>
        </Panel>
      </div>

      <NodeUsage nodeId={n.id} className="mb-5" />

      <NodeInstances node={n} />

      <Panel title="Credential" className="mt-5" bodyClassName="p-4">
        <RekeyPanel n={n} />
      </Panel>
    </div>
  )
}
