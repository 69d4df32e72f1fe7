/**
 * Copying local volumes between nodes with rsync (only the files that changed, permissions,
 * hard links, exact mirrors with --delete). The receiving agent listens on a port of its node address and
 * hands each connection to an rsync daemon in inetd mode, with one module per volume,
 * write-only, chrooted when the agent is root, and a one-time secret (rsync's challenge-
 * response: the secret never crosses the wire). The sending agent runs the rsync client.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdir, rm, writeFile } from 'node:fs/promises'
import net from 'node:net'
import { join } from 'node:path'
import type { Logger } from 'pino'

const USER = 'alveary'
const moduleOf = (volumeId: string) => `v-${volumeId}`
/** A session nobody closed (its move was abandoned) goes after this long. */
const SESSION_TTL_MS = 30 * 60_000

export interface ReceiveSession {
  port: number
  close(): Promise<void>
}

/** rsyncd.conf for one session: one write-only module per volume. */
export function daemonConfig(o: { volumes: { volumeId: string; dataDir: string }[]; secretsFile: string; asRoot: boolean }): string {
  const global = o.asRoot
    ? // chroot confines the daemon to the module: symlinks in the volume cannot point it elsewhere.
      ['use chroot = yes', 'numeric ids = yes', 'uid = 0', 'gid = 0', 'munge symlinks = no']
    : ['use chroot = no', 'numeric ids = yes']
  const modules = o.volumes.flatMap((v) => [
    `[${moduleOf(v.volumeId)}]`,
    `  path = ${v.dataDir}`,
    '  read only = no',
    '  write only = yes',
    '  list = no',
    `  auth users = ${USER}`,
    `  secrets file = ${o.secretsFile}`,
    '  strict modes = yes',
  ])
  return [...global, 'pid file =', 'max connections = 0', ...modules, ''].join('\n')
}

export async function openReceive(o: { address: string; volumes: { volumeId: string; dataDir: string }[]; secret: string; workDir: string; log: Logger }): Promise<ReceiveSession> {
  const dir = join(o.workDir, `copy-${randomBytes(6).toString('hex')}`)
  await mkdir(dir, { recursive: true, mode: 0o700 })
  const secretsFile = join(dir, 'secrets')
  const configFile = join(dir, 'rsyncd.conf')
  await writeFile(secretsFile, `${USER}:${o.secret}\n`, { mode: 0o600 })
  await writeFile(configFile, daemonConfig({ volumes: o.volumes, secretsFile, asRoot: process.getuid?.() === 0 }), { mode: 0o600 })
  const children = new Set<ChildProcess>()
  const server = net.createServer({ pauseOnConnect: true }, (sock) => {
    if (children.size >= 4) return sock.destroy()
    // The daemon inherits this socket: without it, each of the protocol's small exchanges waits
    // on the client's delayed ACK (~40 ms each, ~100 ms of a small final copy).
    sock.setNoDelay(true)
    const child = spawn('rsync', ['--daemon', `--config=${configFile}`, '--log-file=/dev/null'], { stdio: [sock, sock, 'ignore'] })
    children.add(child)
    child.once('error', (err) => o.log.warn({ err }, 'rsync daemon failed'))
    child.once('exit', () => {
      children.delete(child)
      sock.destroy()
    })
  })
  const listen = (host: string) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(0, host, () => {
        server.off('error', reject)
        resolve()
      })
    })
  try {
    await listen(o.address)
  } catch (err) {
    // The advertised address may not be local (NAT): listen on every interface instead.
    o.log.warn({ err: (err as Error).message, address: o.address }, 'cannot listen on the node address for a copy; listening on all interfaces')
    await listen('0.0.0.0')
  }
  const expiry = setTimeout(() => void close(), SESSION_TTL_MS)
  expiry.unref()
  let closing: Promise<void> | null = null
  function close(): Promise<void> {
    closing ??= (async () => {
      clearTimeout(expiry)
      await new Promise<void>((r) => server.close(() => r()))
      for (const c of children) c.kill('SIGKILL')
      await rm(dir, { recursive: true, force: true })
    })()
    return closing
  }
  return { port: (server.address() as net.AddressInfo).port, close }
}

/** "      1,234,567  45%   10.00MB/s    0:00:01 (xfr#3, to-chk=0/5)" -> bytes and fraction. */
export function parseProgress(line: string): { bytes: number; fraction: number; rate: string } | null {
  const m = /^\s*([\d,]+)\s+(\d+)%\s+(\S+)/.exec(line)
  return m ? { bytes: Number(m[1]!.replace(/,/g, '')), fraction: Number(m[2]) / 100, rate: m[3]! } : null
}

/** "Total bytes sent: 1,234" of rsync --stats. */
export function parseBytesSent(out: string): number | null {
  const m = /Total bytes sent: ([\d,.]+)/.exec(out)
  return m ? Number(m[1]!.replace(/[,.]/g, '')) : null
}

/**
 * The rsync client's arguments. --modify-window=-1: files whose size and mtime match are
 * skipped, and by default rsync compares mtimes in whole seconds, so a file rewritten within the
 * second of the pre-copy at the same size (a counter, a small header) would stay stale in the
 * final copy: nanoseconds. TCP_NODELAY: the daemon protocol is a series of small exchanges, each
 * held back by Nagle until the peer's delayed ACK (measured: a small copy 191 → 93 ms p50 with
 * both ends set). --whole-file: between nodes of one cluster the network is faster than reading
 * both sides' copies to compute a delta (rsync's own default for local copies).
 */
export function sendArgs(o: { source: string; host: string; port: number; volumeId: string }): string[] {
  return ['-a', '--delete', '--hard-links', '--numeric-ids', '--modify-window=-1', '--whole-file', '--sockopts=TCP_NODELAY', '--stats', '--info=progress2', '--timeout=60', `${o.source}/`, `rsync://${USER}@${o.host}:${o.port}/${moduleOf(o.volumeId)}/`]
}

/** Copies one volume's data folder to a receiving peer; resolves with the bytes sent. */
export function sendVolume(o: {
  source: string
  volumeId: string
  to: { address: string; port: number }
  secret: string
  onProgress(p: { bytes: number; fraction: number; rate: string }): void
}): Promise<{ bytes: number }> {
  const host = o.to.address.includes(':') ? `[${o.to.address}]` : o.to.address
  const args = sendArgs({ source: o.source, host, port: o.to.port, volumeId: o.volumeId })
  return new Promise((resolve, reject) => {
    const child = spawn('rsync', args, { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', RSYNC_PASSWORD: o.secret }, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out = (out + chunk).slice(-64 * 1024)
      for (const line of chunk.split(/[\r\n]/)) {
        const p = parseProgress(line)
        if (p) o.onProgress(p)
      }
    })
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (err = (err + chunk).slice(-4096)))
    child.once('error', (e) => reject(new Error(`cannot run rsync: ${e.message}`)))
    child.once('exit', (code) => {
      // 24: files vanished while being sent. Expected in a pre-copy of a live volume (the
      // final copy, the source stopped, brings the folder to its exact state).
      if (code === 0 || code === 24) return resolve({ bytes: parseBytesSent(out) ?? 0 })
      const why = err.trim().split('\n').filter(Boolean).slice(-2).join('; ')
      reject(new Error(`rsync exited with code ${code}${why ? `: ${why}` : ''}`))
    })
  })
}

/** rsync is what copies local volumes: the node can move them only when it is there. */
export async function probeRsync(): Promise<{ ok: true } | { ok: false; reason: string }> {
  return new Promise((resolve) => {
    const child = spawn('rsync', ['--version'], { stdio: ['ignore', 'pipe', 'ignore'] })
    let out = ''
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c))
    child.once('error', () => resolve({ ok: false, reason: 'rsync is not installed' }))
    child.once('exit', (code) => {
      const v = /version\s+(\d+)\.(\d+)/.exec(out)
      if (code !== 0 || !v) return resolve({ ok: false, reason: 'rsync --version failed' })
      // --info=progress2 needs 3.1.
      if (Number(v[1]) < 3 || (Number(v[1]) === 3 && Number(v[2]) < 1)) return resolve({ ok: false, reason: `rsync ${v[1]}.${v[2]} is older than 3.1` })
      resolve({ ok: true })
    })
  })
}
