import type { Clock } from '../clock'
import { CoreError } from '../errors'
import { hashToken, newToken } from '../auth/secrets'
import type { TDesired, TDesiredInstance, THello, TInstanceReport } from '../protocol'
import type { ChangeBus } from '../store/change-bus'
import type { Db } from '../store/db'
import { recordEvent } from '../services/events'

export interface AgentServiceDeps {
  db: Db
  bus: ChangeBus
  clock: Clock
}

const TERMINAL = ['stopped', 'exited', 'failed'] as const

/**
 * What the agent gateway needs from core: authenticate a node, record its heartbeats
 * and observed instances, and compute the full desired state for it.
 * Every write is scoped to the calling node: an agent can only report its own instances.
 */
export function createAgentService({ db, bus, clock }: AgentServiceDeps) {
  return {
    async hello(msg: THello): Promise<{ nodeId: string; credential?: string }> {
      const now = clock.now()
      const info = msg.node
      const nodeData = {
        address: info.address,
        labels: info.labels,
        cpuMillis: info.cpuMillis,
        memoryMb: info.memoryMb,
        drivers: info.drivers,
        agentVersion: info.agentVersion,
      }
      let nodeId: string
      let credential: string | undefined
      if ('credential' in msg.auth) {
        const node = await db.node.findUnique({ where: { id: msg.auth.nodeId }, select: { id: true, credentialHash: true } })
        if (!node || node.credentialHash !== hashToken(msg.auth.credential)) throw new CoreError('UNAUTHORIZED', 'unknown node or wrong credential')
        await db.node.update({ where: { id: node.id }, data: nodeData })
        nodeId = node.id
      } else {
        const token = await db.joinToken.findUnique({ where: { tokenHash: hashToken(msg.auth.joinToken) }, select: { id: true, expiresAt: true, revokedAt: true } })
        if (!token || token.revokedAt || token.expiresAt <= now) throw new CoreError('UNAUTHORIZED', 'join token is unknown, expired or revoked')
        credential = newToken('nc')
        // Joining again under the same name (a reinstalled node) takes the node over with a new credential.
        const node = await db.node.upsert({
          where: { name: info.name },
          create: { name: info.name, ...nodeData, credentialHash: hashToken(credential) },
          update: { ...nodeData, credentialHash: hashToken(credential) },
          select: { id: true },
        })
        await db.joinToken.update({ where: { id: token.id }, data: { uses: { increment: 1 } } })
        await recordEvent(db, { kind: 'system', type: 'node.joined', subject: `node/${info.name}`, message: `Node ${info.name} joined (${info.address})` })
        nodeId = node.id
      }
      await db.nodeStatus.upsert({
        where: { nodeId },
        create: { nodeId, state: 'ready', connected: true, lastHeartbeatAt: now, updatedAt: now },
        update: { state: 'ready', connected: true, lastHeartbeatAt: now, updatedAt: now },
      })
      bus.publish({ topic: 'fleet', kind: 'node', id: nodeId })
      return { nodeId, credential }
    },

    async heartbeat(nodeId: string, hb: { cpuUsedMillis: number; memoryUsedMb: number; appliedGeneration: number }) {
      const now = clock.now()
      const prev = await db.nodeStatus.update({
        where: { nodeId },
        data: { lastHeartbeatAt: now, updatedAt: now, cpuUsedMillis: hb.cpuUsedMillis, memoryUsedMb: hb.memoryUsedMb, appliedGeneration: hb.appliedGeneration, state: 'ready', connected: true },
        select: { nodeId: true },
      })
      bus.publish({ topic: 'fleet', kind: 'heartbeat', id: prev.nodeId })
    },

    async disconnected(nodeId: string) {
      await db.nodeStatus.updateMany({ where: { nodeId }, data: { connected: false, updatedAt: clock.now() } })
      bus.publish({ topic: 'fleet', kind: 'node', id: nodeId })
    },

    /** Records observed states. Reports for instances not assigned to this node are ignored. */
    async report(nodeId: string, full: boolean, reports: TInstanceReport[]): Promise<void> {
      const now = clock.now()
      const assigned = await db.instance.findMany({ where: { nodeId }, select: { id: true, tenantId: true, appId: true, desiredState: true, status: { select: { state: true } } } })
      const mine = new Map(assigned.map((i) => [i.id, i]))
      const tenants = new Set<string>()
      const apps = new Set<string>()
      const writes = []
      for (const r of reports) {
        const inst = mine.get(r.instanceId)
        if (!inst) continue
        const data = {
          state: r.state,
          pid: r.pid,
          restarts: r.restarts,
          startedAt: r.startedAt ? new Date(r.startedAt) : null,
          exitCode: r.exitCode,
          message: r.message,
          generation: r.generation,
          updatedAt: now,
        }
        writes.push(db.instanceStatus.upsert({ where: { instanceId: r.instanceId }, create: { instanceId: r.instanceId, ...data }, update: data }))
        tenants.add(inst.tenantId)
        if (TERMINAL.includes(r.state as (typeof TERMINAL)[number])) apps.add(inst.appId)
      }
      if (full) {
        // Assigned but unknown to the agent: a stopped one is done, a running one is not started yet.
        const reported = new Set(reports.map((r) => r.instanceId))
        for (const inst of assigned) {
          if (reported.has(inst.id) || inst.desiredState !== 'stopped' || inst.status?.state === 'stopped') continue
          const data = { state: 'stopped' as const, updatedAt: now, pid: null }
          writes.push(db.instanceStatus.upsert({ where: { instanceId: inst.id }, create: { instanceId: inst.id, ...data }, update: data }))
          tenants.add(inst.tenantId)
          apps.add(inst.appId)
        }
      }
      await db.$transaction(writes)
      for (const t of tenants) bus.publish({ topic: `tenant:${t}`, kind: 'instances' })
      // A stopped instance may let its app finish scaling down or deleting.
      for (const a of apps) bus.publish({ topic: `app:${a}`, kind: 'reconcile', id: a })
    },

    async desiredFor(nodeId: string): Promise<TDesired> {
      const node = await db.node.findUnique({ where: { id: nodeId }, select: { desiredGeneration: true } })
      if (!node) throw new CoreError('NOT_FOUND', 'Node not found')
      const instances = await db.instance.findMany({
        where: { nodeId },
        orderBy: [{ appId: 'asc' }, { ordinal: 'asc' }],
        select: {
          id: true,
          tenantId: true,
          appId: true,
          ordinal: true,
          desiredState: true,
          generation: true,
          hostPorts: true,
          app: {
            select: { name: true, driver: true, image: true, command: true, args: true, env: true, ports: true, cpuMillis: true, memoryMb: true, restartPolicy: true, stopGraceSeconds: true },
          },
        },
      })
      return {
        type: 'desired',
        generation: node.desiredGeneration,
        instances: instances.map((i): TDesiredInstance => {
          const hostPorts = i.hostPorts as Record<string, number>
          return {
            instanceId: i.id,
            tenantId: i.tenantId,
            appId: i.appId,
            appName: i.app.name,
            ordinal: i.ordinal,
            desiredState: i.desiredState,
            generation: i.generation,
            spec: {
              driver: i.app.driver,
              image: i.app.image,
              command: i.app.command,
              args: i.app.args,
              env: i.app.env as Record<string, string>,
              ports: (i.app.ports as { name: string; containerPort?: number }[]).map((p) => ({ name: p.name, containerPort: p.containerPort ?? null, hostPort: hostPorts[p.name] ?? 0 })),
              cpuMillis: i.app.cpuMillis,
              memoryMb: i.app.memoryMb,
              restartPolicy: i.app.restartPolicy,
              stopGraceSeconds: i.app.stopGraceSeconds,
            },
          }
        }),
      }
    },

    /** Node lease: nodes silent for longer than leaseMs become not ready. Returns their ids. */
    async expireLeases(leaseMs: number): Promise<string[]> {
      const cutoff = new Date(clock.now().getTime() - leaseMs)
      const stale = await db.nodeStatus.findMany({ where: { state: 'ready', lastHeartbeatAt: { lt: cutoff } }, select: { nodeId: true, node: { select: { name: true } } } })
      if (!stale.length) return []
      await db.nodeStatus.updateMany({ where: { nodeId: { in: stale.map((s) => s.nodeId) }, state: 'ready' }, data: { state: 'not_ready', updatedAt: clock.now() } })
      for (const s of stale) {
        await recordEvent(db, { kind: 'system', type: 'node.not_ready', subject: `node/${s.node.name}`, message: `Node ${s.node.name} missed its heartbeats for ${leaseMs / 1000}s` })
        bus.publish({ topic: 'fleet', kind: 'node', id: s.nodeId })
      }
      return stale.map((s) => s.nodeId)
    },
  }
}
export type AgentService = ReturnType<typeof createAgentService>
