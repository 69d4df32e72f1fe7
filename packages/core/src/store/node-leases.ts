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
export function createNodeLeases({ hotPool, clock, flushMs = 50, onError, onNodesRevived }: { hotPool: pg.Pool; clock: Clock; flushMs?: number; onError(err: Error): void; onNodesRevived(nodeIds: string[]): void }) {
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

  return {
    /** Resolves 'fenced' when another connection holds the node now; rejects with RejectedRow for values the store refuses. */
    heartbeat: async (beat: Beat) => (await beats.add(beat.sessionId, { ...beat, at: clock.now() })) ?? 'fenced',

    /** A hello: takes the node's session (and marks it ready, its lease starting now) unless another live connection holds it. */
    async claim(nodeId: string, session: { sessionId: string; runId: string | null; staleMs: number }): Promise<TClaim> {
      const now = clock.now()
      const { rows } = await hotPool.query<{ claimed: boolean; state: string | null; lastHeartbeatMs: number | null }>(
        `WITH prev AS (SELECT state, "lastHeartbeatAt" FROM hot."NodeStatus" WHERE "nodeId" = $1),
              up AS (
                INSERT INTO hot."NodeStatus" AS s ("nodeId", state, connected, "lastHeartbeatAt", "updatedAt", "sessionId", "runId")
                VALUES ($1, 'ready', true, $2::timestamp, $2::timestamp, $3, $4)
                ON CONFLICT ("nodeId") DO UPDATE SET state = 'ready', connected = true, "lastHeartbeatAt" = $2::timestamp, "updatedAt" = $2::timestamp,
                  "notReadySince" = NULL, "sessionId" = $3, "runId" = $4
                WHERE NOT s.connected OR s."sessionId" IS NULL OR s."lastHeartbeatAt" IS NULL OR s."lastHeartbeatAt" < $5::timestamp OR s."runId" = $4
                RETURNING 1)
         SELECT EXISTS (SELECT 1 FROM up) AS claimed, prev.state, (extract(epoch FROM prev."lastHeartbeatAt") * 1000)::float8 AS "lastHeartbeatMs"
         FROM (SELECT 1) AS one LEFT JOIN prev ON true`,
        [nodeId, iso(now), session.sessionId, session.runId, iso(new Date(now.getTime() - session.staleMs))],
      )
      const r = rows[0]!
      return r.claimed ? { claimed: true, revived: r.state === 'not_ready' } : { claimed: false, lastHeartbeatAt: new Date(r.lastHeartbeatMs ?? now.getTime()) }
    },

    /** The connection ended: the node is free for the next hello (if that connection still held it). */
    async release(nodeId: string, sessionId: string) {
      await hotPool.query(`UPDATE hot."NodeStatus" SET connected = false, "sessionId" = NULL, "updatedAt" = $3::timestamp WHERE "nodeId" = $1 AND "sessionId" = $2`, [nodeId, sessionId, iso(clock.now())])
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

    /** Writes heartbeats still waiting for their group commit (shutdown, tests). */
    flush: () => beats.drain(),
  }
}
export type NodeLeases = ReturnType<typeof createNodeLeases>
