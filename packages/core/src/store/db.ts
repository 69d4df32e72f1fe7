import { PrismaPg } from '@prisma/adapter-pg'
import pg from 'pg'
import { PrismaClient as HotClient } from '../generated/hot/client'
import { PrismaClient } from '../generated/prisma/client'

export type Db = PrismaClient
export type Hot = HotClient
/** The transaction client handed to callbacks of db.$transaction. */
export type Tx = Parameters<Parameters<PrismaClient['$transaction']>[0]>[0]

/** The PostgreSQL schema that holds the hot store, in whichever database it lives. */
export const HOT_SCHEMA = 'hot'

/**
 * The two stores: desired state (users' writes, placements) and the hot store (heartbeats,
 * observed status, events). By default both live in one database; DATABASE_URL_HOT moves
 * the hot store to its own server so heartbeats never contend with spec writes.
 */
export interface Database {
  prisma: PrismaClient
  pool: pg.Pool
  hot: HotClient
  hotPool: pg.Pool
  url: string
  hotUrl: string
  close(): Promise<void>
}

export function openDatabase(url: string, opts: { hotUrl?: string; max?: number } = {}): Database {
  const mkPool = (connectionString: string) => {
    // Bounded waits: a connection cut without an error (a dead network) must fail its
    // queries, not hang them forever with everything queued behind (group commits, leader
    // checks, the scheduler's node refreshes). A timed-out client is discarded by the pool.
    const pool = new pg.Pool({ connectionString, max: opts.max ?? 10, connectionTimeoutMillis: 10_000, query_timeout: 60_000, keepAlive: true })
    // An idle client losing its connection must not crash the process; the pool replaces it.
    pool.on('error', () => {})
    return pool
  }
  const pool = mkPool(url)
  const hotUrl = opts.hotUrl ?? url
  const hotPool = mkPool(hotUrl)
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool) })
  const hot = new HotClient({ adapter: new PrismaPg(hotPool, { schema: HOT_SCHEMA }) })
  return {
    prisma,
    pool,
    hot,
    hotPool,
    url,
    hotUrl,
    async close() {
      await Promise.all([prisma.$disconnect(), hot.$disconnect()])
      await Promise.all([pool.end().catch(() => {}), hotPool.end().catch(() => {})])
    },
  }
}
