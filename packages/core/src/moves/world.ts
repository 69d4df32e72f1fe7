/** The move steps' view of the world, over the desired store, the hot store and the scheduler. */
import type { LbNodes } from '../load-balancers/nodes'
import type { TVolumeCapability } from '../protocol'
import { loadRequestFor, type NodeSource } from '../scheduler/load'
import { reserveCapacity } from '../scheduler/reserve'
import type { PortRange } from '../scheduler/types'
import type { ChangeBus } from '../store/change-bus'
import type { Db } from '../store/db'
import type { HotStore } from '../store/hot-store'
import type { MoveNode, MoveWorld, MovingInstance } from './types'

export function createMoveWorld({ db, hot, nodeSource, bus, ports, lbNodes }: { db: Db; hot: HotStore; nodeSource: NodeSource; bus: ChangeBus; ports: PortRange; lbNodes: LbNodes }): MoveWorld {
  const nodesChanged = (tenantId: string, ...nodeIds: string[]) => {
    for (const nodeId of nodeIds) {
      bus.publish({ kind: 'node-desired', nodeId })
      bus.publish({ kind: 'capacity', nodeId })
      bus.publish({ kind: 'fleet', what: 'instances', nodeId })
    }
    bus.publish({ kind: 'tenant', tenantId, what: 'instances' })
  }

  /** The node's staged instances changed: its desired state is pushed again. */
  const restage = async (nodeId: string) => {
    await db.node.updateMany({ where: { id: nodeId }, data: { desiredGeneration: { increment: 1 } } })
    bus.publish({ kind: 'node-desired', nodeId })
  }

  const world: MoveWorld = {
    async instance(id) {
      const i = await db.instance.findUnique({
        where: { id },
        select: { id: true, tenantId: true, appId: true, ordinal: true, nodeId: true, desiredState: true, paused: true, app: { select: { name: true, driver: true, image: true } } },
      })
      if (!i) return null
      const [volumes, lease] = await Promise.all([
        db.volume.findMany({ where: { appId: i.appId, ordinal: i.ordinal }, orderBy: { name: 'asc' }, select: { id: true, name: true, driver: true, epoch: true, nodeId: true } }),
        db.ipLease.findFirst({ where: { instanceId: id }, select: { ip: true } }),
      ])
      return { id: i.id, tenantId: i.tenantId, appId: i.appId, appName: i.app.name, ordinal: i.ordinal, nodeId: i.nodeId, desiredState: i.desiredState, paused: i.paused, driver: i.app.driver, image: i.app.image, volumes, networked: lease !== null } satisfies MovingInstance
    },

    async node(id) {
      const [n, [st]] = await Promise.all([db.node.findUnique({ where: { id }, select: { id: true, name: true, address: true, capabilities: true } }), hot.nodeStatuses([id])])
      if (!n) return null
      return { id: n.id, name: n.name, address: n.address, connected: st?.connected ?? false, lastHeartbeatAt: st?.lastHeartbeatAt ?? null, volume: (n.capabilities as { volume?: TVolumeCapability }).volume ?? null } satisfies MoveNode
    },

    async observed(instanceId) {
      const s = (await hot.statusesOf([instanceId])).get(instanceId)
      if (!s) return null
      return { nodeId: s.nodeId, state: s.state, ready: s.ready, message: s.healthMessage ?? s.message, at: s.updatedAt }
    },

    async reserve(move, inst) {
      const held = await db.reservation.findFirst({ where: { moveId: move.id, nodeId: { not: move.sourceNodeId } }, select: { nodeId: true } })
      if (held) return { nodeId: held.nodeId }
      const req = await loadRequestFor(nodeSource.pool, inst.id)
      if (!req) return { reason: 'the instance is gone' }
      // The source pins its local volumes; the move is what takes them elsewhere.
      if (req.volumes) req.volumes = { ...req.volumes, pinnedNodeId: null }
      const copying = inst.volumes.some((v) => v.driver === 'local')
      const nodes = await db.node.findMany({ where: move.targetNodeId ? { id: move.targetNodeId } : { id: { not: move.sourceNodeId } }, select: { id: true, name: true, capabilities: true } })
      if (move.targetNodeId === move.sourceNodeId) return { reason: 'the target is the source' }
      const candidates = nodes.filter((n) => !copying || (n.capabilities as { volume?: TVolumeCapability }).volume?.copy)
      if (!candidates.length) return { reason: move.targetNodeId && nodes[0] ? `${nodes[0].name} cannot receive a copy of a local volume` : 'no other node can receive a copy of a local volume' }
      const res = await reserveCapacity(nodeSource, req, { moveId: move.id, candidates: candidates.map((c) => c.id), ports })
      if (!('nodeId' in res)) return res
      bus.publish({ kind: 'capacity', nodeId: res.nodeId })
      // A reservation stages the instance's network on the node (desired `staged`).
      await restage(res.nodeId)
      return { nodeId: res.nodeId }
    },

    async unreserve(moveId, nodeId) {
      const { count } = await db.reservation.deleteMany({ where: { moveId, nodeId } })
      if (!count) return
      bus.publish({ kind: 'capacity', nodeId })
      await restage(nodeId)
    },

    async setPaused(instanceId, paused) {
      const i = await db.instance.findUnique({ where: { id: instanceId }, select: { tenantId: true, nodeId: true, paused: true } })
      if (!i || i.paused === paused) return
      await db.$transaction([
        db.instance.update({ where: { id: instanceId }, data: { paused } }),
        ...(i.nodeId ? [db.node.update({ where: { id: i.nodeId }, data: { desiredGeneration: { increment: 1 } } })] : []),
      ])
      nodesChanged(i.tenantId, ...(i.nodeId ? [i.nodeId] : []))
    },

    async switchPlacement(move, from, to) {
      const tenantId = await db.$transaction(async (tx) => {
        await tx.$queryRaw`SELECT id FROM "Instance" WHERE id = ${move.instanceId}::uuid FOR UPDATE`
        const i = await tx.instance.findUnique({ where: { id: move.instanceId }, select: { id: true, tenantId: true, appId: true, ordinal: true, nodeId: true, cpuMillis: true, memoryMb: true, hostPorts: true } })
        if (!i) throw new Error('the instance is gone')
        if (i.nodeId === to) return null
        if (i.nodeId !== from) throw new Error(`the instance is on another node than ${from}`)
        const held = await tx.reservation.findUnique({ where: { moveId_nodeId: { moveId: move.id, nodeId: to } } })
        if (!held) throw new Error('no capacity is held on the node it moves to')
        await tx.reservation.delete({ where: { id: held.id } })
        // The old placement becomes a reservation: the way back stays open until the move ends.
        await tx.reservation.create({ data: { instanceId: i.id, moveId: move.id, nodeId: from, appId: i.appId, cpuMillis: i.cpuMillis, memoryMb: i.memoryMb, hostPorts: i.hostPorts } })
        await tx.instance.update({ where: { id: i.id }, data: { nodeId: to, hostPorts: held.hostPorts, paused: false } })
        await tx.volume.updateMany({ where: { appId: i.appId, ordinal: i.ordinal }, data: { nodeId: to, attachedInstanceId: i.id, epoch: { increment: 1 } } })
        await tx.node.updateMany({ where: { id: { in: [from, to] } }, data: { desiredGeneration: { increment: 1 } } })
        return i.tenantId
      })
      if (tenantId) nodesChanged(tenantId, from, to)
    },

    async switchLoadBalancers(instanceId) {
      const i = await db.instance.findUnique({ where: { id: instanceId }, select: { appId: true, tenantId: true } })
      if (!i) return null
      const nodeIds = await lbNodes.nodesServing({ appId: i.appId, tenantId: i.tenantId })
      if (!nodeIds.length) return null
      const nodes = await db.node.updateManyAndReturn({ where: { id: { in: nodeIds } }, data: { desiredGeneration: { increment: 1 } }, select: { id: true, desiredGeneration: true } })
      for (const n of nodes) bus.publish({ kind: 'node-desired', nodeId: n.id })
      return Object.fromEntries(nodes.map((n) => [n.id, n.desiredGeneration]))
    },

    async loadBalancersApplied(generations) {
      const ids = Object.keys(generations)
      let applied = 0
      // One node at a time: `acked` counts a node that is down as done (it gets all of it when it returns).
      for (const id of ids) if (await lbNodes.acked({ [id]: generations[id]! })) applied++
      return { total: ids.length, applied }
    },

    async record(moveId, patch) {
      const m = await db.move.findUnique({ where: { id: moveId }, select: { lastReadyAt: true, firstReadyAt: true } })
      if (!m) return
      const lastReadyAt = patch.lastReadyAt ?? m.lastReadyAt
      const firstReadyAt = patch.firstReadyAt ?? m.firstReadyAt
      await db.move.update({
        where: { id: moveId },
        data: {
          ...(patch.targetNodeId && { targetNodeId: patch.targetNodeId }),
          ...(patch.lastReadyAt && { lastReadyAt: patch.lastReadyAt }),
          ...(patch.firstReadyAt && { firstReadyAt: patch.firstReadyAt }),
          ...(lastReadyAt && firstReadyAt && { downtimeMs: Math.max(0, firstReadyAt.getTime() - lastReadyAt.getTime()) }),
          ...(patch.copied && { bytesCopied: { increment: patch.copied.bytes }, copyMs: { increment: patch.copied.ms } }),
        },
      })
      bus.publish({ kind: 'move', moveId })
    },
  }
  return world
}
