import { lbNodeWhere } from '../load-balancers/nodes'
import { networkStatesOf } from '../networks/node-state'
import type { TDesired, TDesiredInstance, TDesiredLb, TMount } from '../protocol'
import type { TInstanceTemplate } from '../schemas/app'
import type { Db } from '../store/db'
import type { HotStore } from '../store/hot-store'

export interface DesiredDeps {
  db: Db
  /** Instances' reported states: which answer their app's name on their network. */
  hot: Pick<HotStore, 'statusesOf'>
  loadBalancers: { desiredFor(nodeId: string): Promise<TDesiredLb[]> }
}

/**
 * The full desired state of each of these nodes, in a fixed handful of queries however many
 * nodes (a fleet reconnecting after a restart, a change fanned out to every node). Nodes
 * that no longer exist are missing from the result.
 */
export async function loadDesired({ db, hot, loadBalancers }: DesiredDeps, nodeIds: readonly string[]): Promise<Map<string, TDesired>> {
  const ids = [...new Set(nodeIds)]
  const nodes = await db.node.findMany({ where: { id: { in: ids } }, select: { id: true, desiredGeneration: true } })
  if (!nodes.length) return new Map()
  const found = nodes.map((n) => n.id)
  // Three independent chains of reads, side by side: a push sits on a move's downtime.
  const [{ instances, mountsOf }, { placed, stagedRows, nets }, lbs] = await Promise.all([instancesOf(db, found), stagedOf({ db, hot }, found), lbsOf(db, loadBalancers, found)])

  const out = new Map<string, TDesired>(nodes.map((n) => [n.id, { type: 'desired', generation: n.desiredGeneration, loadBalancers: lbs.get(n.id) ?? [], networks: nets.get(n.id)!.networks, instances: [] }]))
  for (const i of instances) {
    const mounts = mountsOf.get(i.id) ?? []
    const declared = (i.app.volumes as unknown[]).length
    // Attached elsewhere (a move in flight, or not attached yet): never run without its data.
    if (mounts.length < declared && i.desiredState === 'running' && !i.paused) continue
    // The instance runs its own revision's template, which may be older than the app's.
    const t = i.appRevision.spec as TInstanceTemplate
    const desired: TDesiredInstance = {
      instanceId: i.id,
      tenantId: i.tenantId,
      runAs: { uid: i.tenant.runAsUid, gid: i.tenant.runAsUid },
      appId: i.appId,
      appName: i.app.name,
      ordinal: i.ordinal,
      // A move holds it stopped between stopping the source and moving the fence.
      desiredState: i.paused ? 'stopped' : i.desiredState,
      generation: i.generation,
      spec: {
        driver: t.driver,
        image: t.image ?? null,
        command: t.command ?? null,
        args: t.args,
        env: t.env,
        ports: t.ports.map((p, k) => ({
          name: p.name,
          containerPort: p.containerPort ?? null,
          hostPort: i.hostPorts[k] ?? 0,
          ...(p.readiness && { readiness: p.readiness }),
          ...(p.liveness && { liveness: p.liveness }),
        })),
        cpuMillis: t.cpuMillis,
        memoryMb: t.memoryMb,
        ...(t.pidsMax != null && { pidsMax: t.pidsMax }),
        ...(t.readOnlyRootfs && { readOnlyRootfs: true as const }),
        restartPolicy: t.restartPolicy,
        stopGraceSeconds: t.stopGraceSeconds,
      },
      interfaces: nets.get(i.nodeId!)!.interfaces.get(i.id) ?? [],
      mounts,
      fence: { stopAfterDisconnect: declared > 0 || i.app.stopAfterDisconnect },
    }
    out.get(i.nodeId!)!.instances.push(desired)
  }
  for (const r of stagedRows) {
    const interfaces = nets.get(r.nodeId)!.interfaces.get(r.instanceId) ?? []
    const d = out.get(r.nodeId)!
    if (interfaces.length) d.staged = [...(d.staged ?? []), { instanceId: r.instanceId, driver: placed.get(r.instanceId)!.app.driver, interfaces }]
  }
  return out
}

/** The instances placed on these nodes, and the mounts of those whose volumes are attached there. */
async function instancesOf(db: Db, found: string[]) {
  const instances = await db.instance.findMany({
    where: { nodeId: { in: found } },
    orderBy: [{ appId: 'asc' }, { ordinal: 'asc' }],
    select: {
      id: true,
      nodeId: true,
      tenantId: true,
      appId: true,
      ordinal: true,
      desiredState: true,
      paused: true,
      generation: true,
      hostPorts: true,
      app: { select: { name: true, volumes: true, stopAfterDisconnect: true } },
      tenant: { select: { runAsUid: true } },
      appRevision: { select: { spec: true } },
    },
  })
  // Only attachments to the instance's own node: an instance whose volume is attached elsewhere gets no mount (and does not start).
  const withVolumes = instances.filter((i) => (i.app.volumes as unknown[]).length)
  const volumes = withVolumes.length
    ? await db.volume.findMany({
        where: { nodeId: { in: found }, attachedInstanceId: { in: withVolumes.map((i) => i.id) } },
        orderBy: { name: 'asc' },
        select: { id: true, name: true, driver: true, sizeMb: true, mountPath: true, epoch: true, attachedInstanceId: true, nodeId: true },
      })
    : []
  const nodeOf = new Map(instances.map((i) => [i.id, i.nodeId]))
  const mountsOf = new Map<string, TMount[]>()
  for (const v of volumes) {
    if (nodeOf.get(v.attachedInstanceId!) !== v.nodeId) continue
    const list = mountsOf.get(v.attachedInstanceId!) ?? []
    list.push({ volumeId: v.id, name: v.name, driver: v.driver, path: v.mountPath, sizeMb: v.sizeMb, epoch: v.epoch })
    mountsOf.set(v.attachedInstanceId!, list)
  }
  return { instances, mountsOf }
}

/** Moves bringing instances here (capacity reserved, still placed elsewhere), and the networks of the nodes with those prepared ahead. */
async function stagedOf({ db, hot }: Pick<DesiredDeps, 'db' | 'hot'>, found: string[]) {
  const reservations = await db.reservation.findMany({ where: { nodeId: { in: found } }, select: { nodeId: true, instanceId: true } })
  const placed = new Map((await db.instance.findMany({ where: { id: { in: reservations.map((r) => r.instanceId) } }, select: { id: true, nodeId: true, app: { select: { driver: true } } } })).map((i) => [i.id, i]))
  const stagedRows = reservations.filter((r) => placed.has(r.instanceId) && placed.get(r.instanceId)!.nodeId !== r.nodeId)
  const staged = new Map<string, string[]>()
  for (const r of stagedRows) staged.set(r.nodeId, [...(staged.get(r.nodeId) ?? []), r.instanceId])
  const nets = await networkStatesOf({ db, hot }, found, staged)
  return { placed, stagedRows, nets }
}

/** Load balancers are served by the few nodes an operator marked for it. */
async function lbsOf(db: Db, loadBalancers: DesiredDeps['loadBalancers'], found: string[]) {
  const lbNodes = await db.node.findMany({ where: { id: { in: found }, ...lbNodeWhere() }, select: { id: true } })
  return new Map(await Promise.all(lbNodes.map(async (n) => [n.id, await loadBalancers.desiredFor(n.id)] as const)))
}
