import { hashToken } from '../auth/secrets'
import type { Clock } from '../clock'
import { CoreError } from '../errors'
import type { Prisma } from '../generated/prisma/client'
import type { THello } from '../protocol'
import type { Db } from '../store/db'
import type { HotStore } from '../store/hot-store'
import type { NodeLeases } from '../store/node-leases'
import type { AuditTrail } from '../audit/trail'
import { createBatchLoader } from '../store/batch-load'
import { joinWithToken, nodeDataOf } from './join'

export type THelloOutcome =
  /** `changed`: the node is new, was NotReady, or describes itself differently (the scheduler must look again). */
  | { ok: true; nodeId: string; credential?: string; changed: boolean }
  /** Another live connection holds the node: a second agent with the same identity. */
  | { ok: false; nodeId: string; retryAfterMs: number }

const nodeSelect = {
  id: true,
  credentialHash: true,
  address: true,
  labels: true,
  cpuMillis: true,
  memoryMb: true,
  drivers: true,
  lbDriver: true,
  agentVersion: true,
  portMin: true,
  portMax: true,
  networkMode: true,
  capabilities: true,
} satisfies Prisma.NodeSelect
type StoredNode = Prisma.NodeGetPayload<{ select: typeof nodeSelect }>

/** JSON with object keys sorted at every level (PostgreSQL's jsonb keeps its own key order). */
const stable = (v: unknown): string =>
  v && typeof v === 'object' && !Array.isArray(v)
    ? `{${Object.keys(v)
        .sort()
        .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
        .map((k) => `${JSON.stringify(k)}:${stable((v as Record<string, unknown>)[k])}`)
        .join(',')}}`
    : Array.isArray(v)
      ? `[${v.map(stable).join(',')}]`
      : JSON.stringify(v)

/** Whether the stored node already says what the hello says (labels in any order). */
function sameData(hello: ReturnType<typeof nodeDataOf>, stored: Record<keyof ReturnType<typeof nodeDataOf>, unknown>): boolean {
  const canon = (k: string, v: unknown) => (k === 'labels' ? JSON.stringify(Object.entries(v as Record<string, string>).sort()) : stable(v))
  return Object.entries(hello).every(([k, v]) => canon(k, v) === canon(k, stored[k as keyof typeof hello]))
}

/**
 * Authenticates hellos (the node's credential, or a join or re-key token), then claims the
 * node's session: a node has one live connection. The node's description is written only
 * once the session is ours, so a refused second agent changes nothing (not even the port
 * range it announced). Hellos arriving together (a fleet reconnecting after a restart) are
 * read in one query and claimed in one statement (store/batch-load.ts, NodeLeases.claim).
 */
export function createHelloAcceptor(deps: { db: Db; hot: HotStore; leases: NodeLeases; clock: Clock; audit: AuditTrail }) {
  const { db, leases, clock } = deps
  const nodes = createBatchLoader<string, StoredNode>({
    loadMany: async (ids) => new Map((await db.node.findMany({ where: { id: { in: ids } }, select: nodeSelect })).map((n) => [n.id, n])),
    missing: () => new CoreError('UNAUTHORIZED', 'unknown node or wrong credential'),
    maxBatch: 500,
    concurrency: 2,
  })

  return async function acceptHello(msg: THello, session: { sessionId: string; staleMs: number; remote: string }): Promise<THelloOutcome> {
    let nodeId: string
    let credential: string | undefined
    let stored: StoredNode | null = null
    if ('credential' in msg.auth) {
      stored = await nodes.load(msg.auth.nodeId)
      if (stored.credentialHash !== hashToken(msg.auth.credential)) throw new CoreError('UNAUTHORIZED', 'unknown node or wrong credential')
      nodeId = stored.id
    } else {
      ;({ nodeId, credential } = await joinWithToken(deps, msg.auth.joinToken, msg.node, { remote: session.remote }))
    }

    const claim = await leases.claim(nodeId, { sessionId: session.sessionId, runId: msg.runId ?? null, staleMs: session.staleMs })
    if (!claim.claimed) {
      const staleAt = claim.lastHeartbeatAt.getTime() + session.staleMs
      return { ok: false, nodeId, retryAfterMs: Math.max(1_000, staleAt - clock.now().getTime()) }
    }
    const data = nodeDataOf(msg.node)
    const described = stored !== null && !sameData(data, stored)
    if (described) await db.node.update({ where: { id: nodeId }, data })
    return { ok: true, nodeId, credential, changed: !stored || described || claim.revived }
  }
}
