/** Where the Docker Engine API answers, and whether it works (the driver is offered only then). */
import { stat } from 'node:fs/promises'
import http, { type IncomingHttpHeaders } from 'node:http'
import Docker from 'dockerode'
import { daemonMessage } from './errors'

export type DockerEndpoint = { kind: 'unix'; socketPath: string } | { kind: 'tcp'; host: string; port: number }

/** `unix:///path`, `/path`, `tcp://host:port` (or http://); throws on anything else. */
export function parseDockerHost(input: string): DockerEndpoint {
  const s = input.trim()
  if (s.startsWith('/')) return { kind: 'unix', socketPath: s }
  let url: URL
  try {
    url = new URL(s)
  } catch {
    throw new Error(`"${input}" is not unix:///path/to/socket or tcp://host:port`)
  }
  if (url.protocol === 'unix:') {
    const path = decodeURIComponent(url.pathname)
    if (!path || path === '/') throw new Error(`"${input}" has no socket path`)
    return { kind: 'unix', socketPath: path }
  }
  if (url.protocol === 'tcp:' || url.protocol === 'http:') {
    if (!url.hostname) throw new Error(`"${input}" has no host`)
    return { kind: 'tcp', host: url.hostname.replace(/^\[|\]$/g, ''), port: url.port ? Number(url.port) : 2375 }
  }
  throw new Error(`unsupported docker host scheme ${url.protocol} in "${input}" (use unix:// or tcp://; TLS is not supported)`)
}

export function endpointUrl(e: DockerEndpoint): string {
  return e.kind === 'unix' ? `unix://${e.socketPath}` : `tcp://${e.host}:${e.port}`
}

/** Docker's socket, else rootful Podman's, else rootless Podman's; the first that exists. */
export async function defaultDockerHost(env: Record<string, string | undefined> = process.env): Promise<string | null> {
  const candidates = ['/var/run/docker.sock', '/run/podman/podman.sock']
  if (env.XDG_RUNTIME_DIR) candidates.push(`${env.XDG_RUNTIME_DIR}/podman/podman.sock`)
  for (const path of candidates) {
    try {
      if ((await stat(path)).isSocket()) return `unix://${path}`
    } catch {
      // absent
    }
  }
  return null
}

/** A client for exactly this endpoint: dockerode would otherwise merge DOCKER_* from the env. */
export function dockerClient(e: DockerEndpoint): Docker {
  const none = { host: undefined, port: undefined, socketPath: undefined, protocol: undefined, ca: undefined, cert: undefined, key: undefined }
  return new Docker(e.kind === 'unix' ? { ...none, socketPath: e.socketPath } : { ...none, host: e.host, port: e.port, protocol: 'http' })
}

export type DockerProbe =
  | { ok: true; docker: Docker; endpoint: DockerEndpoint; apiVersion: string; version: string; engine: 'docker' | 'podman' }
  | { ok: false; reason: string }

/**
 * The driver works when the socket is there and /_ping answers OK with an API version. The
 * ping's headers name the engine and its version: Podman's /version samples CPU use for a
 * second and runs several programs, too slow for a start-up probe on a busy machine.
 */
export async function probeDocker(host: string, timeoutMs = 3000): Promise<DockerProbe> {
  let endpoint: DockerEndpoint
  try {
    endpoint = parseDockerHost(host)
  } catch (err) {
    return { ok: false, reason: (err as Error).message }
  }
  if (endpoint.kind === 'unix') {
    try {
      if (!(await stat(endpoint.socketPath)).isSocket()) return { ok: false, reason: `${endpoint.socketPath} is not a socket` }
    } catch {
      return { ok: false, reason: `no socket at ${endpoint.socketPath}` }
    }
  }
  let pong: { status: number; body: string; headers: IncomingHttpHeaders }
  try {
    pong = await ping(endpoint, timeoutMs)
  } catch (err) {
    return { ok: false, reason: (err as Error).name === 'AbortError' ? `no answer to /_ping within ${timeoutMs} ms` : daemonMessage(err) }
  }
  if (pong.status !== 200 || pong.body.trim() !== 'OK') return { ok: false, reason: `ping answered ${pong.status} "${pong.body.trim().slice(0, 40)}"` }
  const apiVersion = pong.headers['api-version']
  if (typeof apiVersion !== 'string' || !apiVersion) return { ok: false, reason: 'the engine did not report an API version' }
  const podman = typeof pong.headers['libpod-api-version'] === 'string'
  const version = /^(?:Docker|Libpod)\/(\S+)/.exec(String(pong.headers.server ?? ''))?.[1] ?? 'unknown'
  return { ok: true, docker: dockerClient(endpoint), endpoint, apiVersion, version, engine: podman ? 'podman' : 'docker' }
}

function ping(e: DockerEndpoint, timeoutMs: number) {
  return new Promise<{ status: number; body: string; headers: IncomingHttpHeaders }>((resolve, reject) => {
    const where = e.kind === 'unix' ? { socketPath: e.socketPath } : { host: e.host, port: e.port }
    const req = http.get({ ...where, path: '/_ping', signal: AbortSignal.timeout(timeoutMs) }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => (body += d.slice(0, 200)))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }))
      res.on('error', reject)
    })
    req.on('error', reject)
  })
}
