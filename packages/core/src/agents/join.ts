import type { AuditTrail } from '../audit/trail'
import type { Clock } from '../clock'
import type { Prisma } from '../generated/prisma/client'
import { CoreError } from '../errors'
import { hashToken, newToken } from '../auth/secrets'
import type { TNodeInfo } from '../protocol'
import type { Db } from '../store/db'
import type { HotStore } from '../store/hot-store'

/** What a hello writes about the node (the agent's own description of it). */
export const nodeDataOf = (info: TNodeInfo) => ({
  address: info.address,
  labels: info.labels,
  cpuMillis: info.cpuMillis,
  memoryMb: info.memoryMb,
  drivers: info.drivers,
  lbDriver: info.capabilities.lb,
  agentVersion: info.agentVersion,
  portMin: info.portRange?.min ?? null,
  portMax: info.portRange?.max ?? null,
  networkMode: info.capabilities.network ?? 'host',
  capabilities: info.capabilities,
})

/**
 * A hello with a join token. A join token creates a node under a new name and never takes
 * over an existing one (that would hand a stranger the node's id, credential and desired
 * state). A re-key token, issued by an operator for one node, is the only way to give an
 * existing node a new credential. Each token allows `maxUses` joins; a use is consumed in
 * the same transaction that creates (or re-keys) the node, so a refused join costs nothing.
 */
export async function joinWithToken(deps: JoinDeps, token: string, info: TNodeInfo, from: { remote: string }): Promise<{ nodeId: string; credential: string }> {
  const t = await deps.db.joinToken.findUnique({ where: { tokenHash: hashToken(token) }, select: joinTokenSelect })
  // A token nobody issued leaves no audit row (anyone can send one); every use of a real one does, refused or not.
  if (!t) throw new CoreError('UNAUTHORIZED', 'join token is unknown, expired or revoked')
  const audited = (result: string, error: string | null) =>
    deps.audit.record({
      tenantId: null,
      actorKind: 'agent',
      actorId: null,
      actorEmail: null,
      operator: false,
      credential: `jointoken:${t.id}`,
      sourceIp: from.remote,
      userAgent: `alveary-agent/${info.agentVersion}`,
      door: 'agent',
      action: t.rekeyNode ? 'node.rekey' : 'node.join',
      target: `node/${info.name}`,
      request: { name: info.name, address: info.address, tokenPrefix: t.prefix },
      summary: result === 'ok' ? `Node ${info.name} (${info.address}) ${t.rekeyNode ? 'took its new credential' : 'joined'} with token ${t.prefix}…` : '',
      result,
      error,
      requestId: null,
    })
  try {
    const joined = await join(deps, t, info)
    await audited('ok', null)
    return joined
  } catch (err) {
    await audited(err instanceof CoreError ? err.code : 'INTERNAL_SERVER_ERROR', err instanceof CoreError ? err.message : 'internal error')
    throw err
  }
}

const joinTokenSelect = {
  id: true,
  prefix: true,
  description: true,
  expiresAt: true,
  revokedAt: true,
  uses: true,
  maxUses: true,
  createdById: true,
  rekeyNode: { select: { id: true, name: true } },
} satisfies Prisma.JoinTokenSelect

interface JoinDeps {
  db: Db
  hot: HotStore
  clock: Clock
  audit: AuditTrail
}

async function join({ db, hot, clock }: JoinDeps, t: Prisma.JoinTokenGetPayload<{ select: typeof joinTokenSelect }>, info: TNodeInfo): Promise<{ nodeId: string; credential: string }> {
  if (t.revokedAt || t.expiresAt <= clock.now()) throw new CoreError('UNAUTHORIZED', 'join token is unknown, expired or revoked')
  if (t.uses >= t.maxUses) throw new CoreError('UNAUTHORIZED', `join token ${t.prefix}… has no uses left (it allowed ${t.maxUses})`)
  if (t.rekeyNode && t.rekeyNode.name !== info.name) throw new CoreError('UNAUTHORIZED', `this re-key token is for node ${t.rekeyNode.name}, not ${info.name}`)
  if (!t.rekeyNode && (await db.node.findUnique({ where: { name: info.name }, select: { id: true } }))) {
    await hot.recordEvent({
      kind: 'system',
      type: 'node.join_refused',
      subject: `node/${info.name}`,
      message: `A join as ${info.name} (from ${info.address}, token ${t.prefix}…) was refused: that node exists`,
      data: { tokenId: t.id, tokenPrefix: t.prefix },
    })
    throw new CoreError('CONFLICT', `node ${info.name} exists; joins never take a node over (re-key it)`)
  }

  const credential = newToken('nc')
  const data = { ...nodeDataOf(info), credentialHash: hashToken(credential) }
  const nodeId = await db
    .$transaction(async (tx) => {
      const used = await tx.$executeRaw`UPDATE "JoinToken" SET uses = uses + 1 WHERE id = ${t.id}::uuid AND uses < "maxUses" AND "revokedAt" IS NULL`
      if (!used) throw new CoreError('UNAUTHORIZED', `join token ${t.prefix}… has no uses left (it allowed ${t.maxUses})`)
      if (t.rekeyNode) return (await tx.node.update({ where: { id: t.rekeyNode.id }, data, select: { id: true } })).id
      return (await tx.node.create({ data: { name: info.name, ...data }, select: { id: true } })).id
    })
    .catch((err) => {
      // Two joins raced for the same new name: the loser is refused like any taken name.
      if ((err as { code?: string }).code === 'P2002') throw new CoreError('CONFLICT', `node ${info.name} exists; joins never take a node over (re-key it)`)
      throw err
    })

  const creator = t.createdById ? await db.user.findUnique({ where: { id: t.createdById }, select: { email: true } }) : null
  const by = `token ${t.prefix}… ("${t.description}"${creator ? `, created by ${creator.email}` : ''})`
  await hot.recordEvent({
    kind: 'audit',
    type: t.rekeyNode ? 'node.rekey_completed' : 'node.joined',
    subject: `node/${info.name}`,
    message: t.rekeyNode ? `Node ${info.name} took its new credential (${info.address}) with re-key ${by}` : `Node ${info.name} joined (${info.address}) with join ${by}`,
    data: { nodeId, tokenId: t.id, tokenPrefix: t.prefix, tokenCreatedById: t.createdById },
  })
  return { nodeId, credential }
}
