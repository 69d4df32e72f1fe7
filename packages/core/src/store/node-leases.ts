import type pg from 'pg'
import type { Clock } from '../clock'
import { createGroupCommit } from './group-commit'

export interface Beat {
  nodeId: string
  /** The connection it came on: only the node's current session lands. */
  sessionId: string
  cpuUsedMillis: number
  memoryUsedMb: number
  appliedGeneration: number
}

interface Claim {
  nodeId: string
  runId: string | null
  staleMs: number
}

export type TClaim =
  | { claimed: true; revived: boolean }
  /** Another connection holds the node and heartbeated at `lastHeartbeatAt`. */
  | { claimed: false; lastHeartbeatAt: Date }

/**
 * Node leases in the hot store. A node has at most one session (its live connection,
 * across every BFF): a hello claims it only when the current one is gone, silent for
 * `staleMs`, or held by the same agent run reconnecting. Heartbeats are group-committed
 * (one statement per flush, whatever the number of agents) and land only for the
 * session that holds the node: a connection that lost its node is told it is fenced.
 */
export function createNodeLeases({
  hotPool,
  clock,
  flushMs = 50,
  claimFlushMs = 5,
  onError,
  onNodesRevived,
}: {
  hotPool: pg.Pool
  clock: Clock
  /** Heartbeats wait this long for others to share their write; claims and releases (a hello waits for its claim), this. */
  flushMs?: number
  claimFlushMs?: number
  onError(err: Error): void
  onNodesRevived(nodeIds: string[]): void
}) {
  const iso = (d: Date) => d.toISOString()
  const beats = createGroupCommit<string, Beat & { at: Date }, 'ok' | 'fenced'>({
    clock,
    maxDelayMs: flushMs,
    onError,
    async flush(items) {
      const b = [...items.values()]
      const { rows } = await hotPool.query<{ sessionId: string; nodeId: string; revived: boolean }>(
        `WITH v AS (SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::int[], $4::int[], $5::int[], $6::timestamp[]) AS v(id, session, cpu, mem, gen, at)),
              was AS (SELECT "nodeId" FROM hot."NodeStatus" WHERE "nodeId" IN (SELECT id FROM v) AND state = 'not_ready')
         UPDATE hot."NodeStatus" AS s SET "lastHeartbeatAt" = v.at, "updatedAt" = v.at, "cpuUsedMillis" = v.cpu, "memoryUsedMb" = v.mem,
           "appliedGeneration" = v.gen, connected = true, state = 'ready', "notReadySince" = NULL
         FROM v WHERE s."nodeId" = v.id AND s."sessionId" = v.session
         RETURNING v.session AS "sessionId", s."nodeId", s."nodeId" IN (SELECT "nodeId" FROM was) AS revived`,
        [b.map((x) => x.nodeId), b.map((x) => x.sessionId), b.map((x) => x.cpuUsedMillis), b.map((x) => x.memoryUsedMb), b.map((x) => x.appliedGeneration), b.map((x) => iso(x.at))],
      )
      const revived = rows.filter((r) => r.revived).map((r) => r.nodeId)
      if (revived.length) onNodesRevived(revived)
      const landed = new Set(rows.map((r) => r.sessionId))
      return new Map([...items.keys()].map((session) => [session, landed.has(session) ? 'ok' : 'fenced']))
    },
  })

  /**
   * Hellos arriving together claim their nodes in one statement (a fleet reconnecting after a
   * restart). Two claims of one node in a batch would be one row updated twice: they go in
   * rounds, so each sees the one before it as if they had come one after the other.
   */
  const claims = createGroupCommit<string, Claim, TClaim>({
    clock,
    maxDelayMs: claimFlushMs,
    onError,
    async flush(items) {
      const out = new Map<string, TClaim>()
      const rounds: [string, Claim][][] = []
      const seen = new Map<string, number>()
      for (const item of items) {
        const k = seen.get(item[1].nodeId) ?? 0
        seen.set(item[1].nodeId, k + 1)
        ;(rounds[k] ??= []).push(item)
      }
      for (const round of rounds) for (const [session, claim] of await claimRound(round)) out.set(session, claim)
      return out
    },
  })
  const claimRound = async (round: [string, Claim][]): Promise<Map<string, TClaim>> => {
    // Rows locked in one order by every BFF: two batches never wait for each other in a cycle.
    const c = [...round].sort(([, a], [, b]) => (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0))
    const now = clock.now()
    const staleBefore = new Map(c.map(([, x]) => [x.staleMs, iso(new Date(now.getTime() - x.staleMs))]))
    const { rows } = await hotPool.query<{ sessionId: string; claimed: boolean; state: string | null; lastHeartbeatMs: number | null }>(
      `WITH v AS (SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::timestamp[]) WITH ORDINALITY AS v(id, session, run, stale, ord)),
            prev AS (SELECT s."nodeId", s.state, s."lastHeartbeatAt" FROM hot."NodeStatus" s WHERE s."nodeId" IN (SELECT id FROM v)),
            up AS (
              INSERT INTO hot."NodeStatus" AS s ("nodeId", state, connected, "lastHeartbeatAt", "updatedAt", "sessionId", "runId")
              SELECT id, 'ready', true, $5::timestamp, $5::timestamp, session, run FROM v ORDER BY ord
              ON CONFLICT ("nodeId") DO UPDATE SET state = 'ready', connected = true, "lastHeartbeatAt" = $5::timestamp, "updatedAt" = $5::timestamp,
                "notReadySince" = NULL, "sessionId" = EXCLUDED."sessionId", "runId" = EXCLUDED."runId"
              WHERE NOT s.connected OR s."sessionId" IS NULL OR s."lastHeartbeatAt" IS NULL
                OR s."lastHeartbeatAt" < (SELECT stale FROM v WHERE v.id = s."nodeId") OR s."runId" = EXCLUDED."runId"
              RETURNING s."nodeId")
       SELECT v.session AS "sessionId", v.id IN (SELECT "nodeId" FROM up) AS claimed, prev.state,
         (extract(epoch FROM prev."lastHeartbeatAt") * 1000)::float8 AS "lastHeartbeatMs"
       FROM v LEFT JOIN prev ON prev."nodeId" = v.id`,
      [c.map(([, x]) => x.nodeId), c.map(([session]) => session), c.map(([, x]) => x.runId), c.map(([, x]) => staleBefore.get(x.staleMs)!), iso(now)],
    )
    return new Map(
      rows.map((r) => [r.sessionId, r.claimed ? { claimed: true, revived: r.state === 'not_ready' } : { claimed: false, lastHeartbeatAt: new Date(r.lastHeartbeatMs ?? now.getTime()) }]),
    )
  }

  /** Connections that ended together (a BFF shutting down closes all of them) free their nodes in one statement. */
  const releases = createGroupCommit<string, string>({
    clock,
    maxDelayMs: claimFlushMs,
    onError,
    async flush(items) {
      await hotPool.query(
        `UPDATE hot."NodeStatus" AS s SET connected = false, "sessionId" = NULL, "updatedAt" = $3::timestamp
         FROM unnest($1::uuid[], $2::uuid[]) AS v(id, session) WHERE s."nodeId" = v.id AND s."sessionId" = v.session`,
        [[...items.values()], [...items.keys()], iso(clock.now())],
      )
    },
  })

  /** The desired-state generation each connection last said it applied. */
  const acknowledged = new Map<string, number>()

  return {
    /**
     * Resolves 'fenced' when another connection holds the node now; rejects with RejectedRow for values the store refuses.
     * A beat acknowledging a newer generation than the connection's last (an agent beats right after applying a desired
     * state) is written without the coalescing delay: rollouts and moves wait on it, and the agent's later frames wait behind it.
     */
    async heartbeat(beat: Beat) {
      const before = acknowledged.get(beat.sessionId)
      acknowledged.set(beat.sessionId, beat.appliedGeneration)
      const now = before !== undefined && beat.appliedGeneration > before
      return (await beats.add(beat.sessionId, { ...beat, at: clock.now() }, { now })) ?? 'fenced'
    },

    /** A hello: takes the node's session (and marks it ready, its lease starting now) unless another live connection holds it. */
    claim: async (nodeId: string, session: { sessionId: string; runId: string | null; staleMs: number }): Promise<TClaim> =>
      (await claims.add(session.sessionId, { nodeId, ...session }))!,

    /** The connection ended: the node is free for the next hello (if that connection still held it). */
    async release(nodeId: string, sessionId: string) {
      acknowledged.delete(sessionId)
      await releases.add(sessionId, nodeId)
    },
    /** Ends whatever session holds the node (its credential was revoked): its heartbeats are fenced from now on. */
    async revoke(nodeId: string) {
      await hotPool.query(`UPDATE hot."NodeStatus" SET connected = false, "sessionId" = NULL, "updatedAt" = $2::timestamp WHERE "nodeId" = $1`, [nodeId, iso(clock.now())])
    },

    /** Nodes whose lease expired become NotReady (only those heard from since `heardSince`, when given); returns them. */
    async expire(leaseMs: number, heardSince: Date | null): Promise<string[]> {
      const now = clock.now()
      const { rows } = await hotPool.query<{ nodeId: string }>(
        `UPDATE hot."NodeStatus" SET state = 'not_ready', "notReadySince" = $2, "updatedAt" = $2
         WHERE state = 'ready' AND "lastHeartbeatAt" < $1 AND ($3::timestamp IS NULL OR "lastHeartbeatAt" >= $3::timestamp) RETURNING "nodeId"`,
        [iso(new Date(now.getTime() - leaseMs)), iso(now), heardSince && iso(heardSince)],
      )
      return rows.map((r) => r.nodeId)
    },

    /** Writes heartbeats and releases still waiting for their group commit (shutdown, tests). */
    flush: () => Promise.all([beats.drain(), releases.drain()]).then(() => {}),
  }
}
export type NodeLeases = ReturnType<typeof createNodeLeases>
