import { execFileSync, spawn } from 'node:child_process'
import { chmod, cp, mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { postgresBinaries, startEmbeddedPostgres, type EmbeddedPostgres } from '../src/embedded-db'
import { freshDatabase } from '../src/fresh-database'

const isRoot = process.getuid?.() === 0

async function freePort() {
  const srv = net.createServer()
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r))
  const { port } = srv.address() as net.AddressInfo
  await new Promise((r) => srv.close(r))
  return port
}

async function query(url: string, sql: string) {
  const client = new pg.Client({ connectionString: url })
  client.on('error', () => {})
  await client.connect()
  try {
    return (await client.query(sql)).rows
  } finally {
    await client.end()
  }
}

const answers = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = net.connect(port, '127.0.0.1')
    s.once('connect', () => (s.destroy(), resolve(true)))
    s.once('error', () => resolve(false))
  })

/**
 * A checkout in a private directory, the way a clone in /root is: mkdtemp makes the
 * directory 0700, so only its owner reaches the PostgreSQL binaries and the data inside.
 */
describe('embedded PostgreSQL from a private directory', () => {
  let dir: string
  let binDir: string
  const started: EmbeddedPostgres[] = []

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'alveary-private-'))
    expect((await stat(dir)).mode & 0o777).toBe(0o700)
    const native = path.dirname(path.dirname((await postgresBinaries()).postgres))
    await cp(native, path.join(dir, 'checkout/native'), { recursive: true, verbatimSymlinks: true })
    binDir = path.join(dir, 'checkout/native/bin')
  })
  afterAll(async () => {
    await Promise.all(started.map((s) => s.stop()))
    await rm(dir, { recursive: true, force: true })
  })

  it('starts, keeps its data across a restart and stops', async () => {
    const port = await freePort()
    const databaseDir = path.join(dir, 'checkout/.data/postgres')
    const first = await startEmbeddedPostgres({ databaseDir, port, database: 'alveary', binDir })
    started.push(first)
    await query(first.url, `CREATE TABLE note (text text); INSERT INTO note VALUES ('kept ✓')`)
    await first.stop()
    expect(await answers(port)).toBe(false)
    // As root, PostgreSQL ran as "nobody" in a user namespace: its files still belong to root.
    if (isRoot) expect((await stat(path.join(databaseDir, 'PG_VERSION'))).uid).toBe(0)

    const second = await startEmbeddedPostgres({ databaseDir, port, database: 'alveary', binDir })
    started.push(second)
    expect(await query(second.url, 'SELECT text FROM note')).toEqual([{ text: 'kept ✓' }])
    await second.stop()
  })

  it('refuses a port in use with a clear message', async () => {
    const busy = net.createServer()
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r))
    const { port } = busy.address() as net.AddressInfo
    try {
      await expect(startEmbeddedPostgres({ databaseDir: path.join(dir, 'busy'), port, database: 'alveary', binDir, durable: false })).rejects.toThrow(
        /embedded PostgreSQL \(port \d+, .*\) did not start .*Address already in use/,
      )
    } finally {
      busy.close()
    }
  })

  it.runIf(process.platform === 'linux')('stops when the process that started it is killed with SIGKILL', async () => {
    const databaseDir = path.join(dir, 'orphan')
    const port = await freePort()
    const src = path.resolve(import.meta.dirname, '../src/embedded-db.ts')
    const script = `import { startEmbeddedPostgres } from ${JSON.stringify(src)}
await startEmbeddedPostgres({ databaseDir: ${JSON.stringify(databaseDir)}, port: ${port}, database: 'alveary', binDir: ${JSON.stringify(binDir)}, durable: false })
console.log('ready')
setInterval(() => {}, 1000)`
    const tsx = path.resolve(import.meta.dirname, '../../../node_modules/.bin/tsx')
    const file = path.join(dir, 'starter.mts')
    await writeFile(file, script)
    const child = spawn(tsx, [file], { stdio: ['ignore', 'pipe', 'inherit'], detached: true })
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve())
        child.once('exit', (code) => reject(new Error(`the starter exited (${code}) before the server was ready`)))
      })
      expect(await answers(port)).toBe(true)
      // tsx runs the script in a child node process: kill that whole group at once, no handler runs.
      process.kill(-child.pid!, 'SIGKILL')
    } catch (err) {
      child.kill('SIGKILL')
      throw err
    }
    const deadline = Date.now() + 60_000
    while ((await answers(port)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200))
    expect(await answers(port)).toBe(false)
  })

  it('refuses a second server on the same data directory, and the first keeps working', async () => {
    const databaseDir = path.join(dir, 'shared')
    const first = await startEmbeddedPostgres({ databaseDir, port: await freePort(), database: 'alveary', binDir, durable: false })
    started.push(first)
    await expect(startEmbeddedPostgres({ databaseDir, port: await freePort(), database: 'alveary', binDir, durable: false })).rejects.toThrow(
      /did not start .*lock file "postmaster.pid" already exists/,
    )
    expect(await query(first.url, 'SELECT 1 AS ok')).toEqual([{ ok: 1 }])
    await first.stop()
  })

  it.skipIf(!isRoot)('as root without user namespaces, says in one sentence what to do when the postgres user cannot reach the binaries', async (ctx) => {
    try {
      execFileSync('id', ['-u', 'postgres'], { stdio: 'ignore' })
    } catch {
      // Without that user, start-up would create it (useradd): not something a test should do.
      return ctx.skip('no system user postgres on this machine')
    }
    // An `unshare` that fails, as in a container whose seccomp profile forbids user namespaces.
    const fakeBin = path.join(dir, 'fake-bin')
    await mkdir(fakeBin)
    await writeFile(path.join(fakeBin, 'unshare'), '#!/bin/sh\nexit 1\n')
    await chmod(path.join(fakeBin, 'unshare'), 0o755)
    const savedPath = process.env.PATH
    process.env.PATH = `${fakeBin}:${savedPath}`
    try {
      await expect(startEmbeddedPostgres({ databaseDir: path.join(dir, 'as-postgres'), port: await freePort(), database: 'alveary', binDir })).rejects.toThrow(
        /^PostgreSQL cannot run as root, .* the user postgres cannot reach .*: run Alveary as an ordinary user, or from a directory every user can reach, or set DATABASE_URL to a PostgreSQL server$/,
      )
    } finally {
      process.env.PATH = savedPath
    }
  })
})

describe('freshDatabase with TEST_DATABASE_URL=embedded', () => {
  it('creates a throwaway embedded database and removes it on drop', async () => {
    const saved = process.env.TEST_DATABASE_URL
    process.env.TEST_DATABASE_URL = 'embedded'
    try {
      const db = await freshDatabase()
      const port = Number(new URL(db.url).port)
      expect(await query(db.url, 'SELECT current_database() AS name')).toEqual([{ name: 'alveary_test' }])
      await db.drop()
      expect(await answers(port)).toBe(false)
    } finally {
      if (saved === undefined) delete process.env.TEST_DATABASE_URL
      else process.env.TEST_DATABASE_URL = saved
    }
  })
})
