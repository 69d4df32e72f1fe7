import { PrismaPg } from '@prisma/adapter-pg'
import pg from 'pg'
import { PrismaClient } from '../generated/prisma/client'

export type Db = PrismaClient
/** The transaction client handed to callbacks of db.$transaction. */
export type Tx = Parameters<Parameters<PrismaClient['$transaction']>[0]>[0]

export interface Database {
  prisma: PrismaClient
  pool: pg.Pool
  url: string
  close(): Promise<void>
}

export function openDatabase(url: string, opts: { max?: number } = {}): Database {
  const pool = new pg.Pool({ connectionString: url, max: opts.max ?? 10 })
  // An idle client losing its connection must not crash the process; the pool replaces it.
  pool.on('error', () => {})
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool) })
  return {
    prisma,
    pool,
    url,
    async close() {
      await prisma.$disconnect()
      await pool.end().catch(() => {})
    },
  }
}
