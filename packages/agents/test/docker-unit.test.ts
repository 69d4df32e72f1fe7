import { existsSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { createServer as createHttpServer } from 'node:http'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { parseConfig } from '../src/config'
import { containerConfig, publishHostIp } from '../src/runtime/docker/config'
import { defaultDockerHost, parseDockerHost, probeDocker } from '../src/runtime/docker/endpoint'
import { daemonMessage } from '../src/runtime/docker/errors'
import { exitInfoOf } from '../src/runtime/docker/exit'
import { parseTimestampNs } from '../src/runtime/docker/logs'
import { createProcessDriver } from '../src/runtime/process/driver'
import { createStateStore } from '../src/state-store'
import { createSupervisor } from '../src/supervisor'
import { makeInstance, tempDir, testLogger, waitFor } from './helpers'

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

describe('docker driver, without an engine', () => {
  it('parses DOCKER_HOST forms', () => {
    expect(parseDockerHost('unix:///var/run/docker.sock')).toEqual({ kind: 'unix', socketPath: '/var/run/docker.sock' })
    expect(parseDockerHost('/run/podman/podman.sock')).toEqual({ kind: 'unix', socketPath: '/run/podman/podman.sock' })
    expect(parseDockerHost('tcp://10.0.0.5:2375')).toEqual({ kind: 'tcp', host: '10.0.0.5', port: 2375 })
    expect(parseDockerHost('tcp://docker')).toEqual({ kind: 'tcp', host: 'docker', port: 2375 })
    expect(() => parseDockerHost('ssh://me@host')).toThrow(/unsupported docker host scheme ssh:/)
    expect(() => parseDockerHost('nonsense')).toThrow(/not unix:/)
    expect(() => parseDockerHost('unix://')).toThrow()
  })

  it('takes --docker-host or DOCKER_HOST, and rejects nonsense', () => {
    const flag = parseConfig(['--docker-host', 'tcp://h:1'], { DOCKER_HOST: 'unix:///x.sock' })
    expect(flag).toMatchObject({ kind: 'config', config: { dockerHost: 'tcp://h:1' } })
    expect(parseConfig([], { DOCKER_HOST: 'unix:///x.sock' })).toMatchObject({ kind: 'config', config: { dockerHost: 'unix:///x.sock' } })
    expect(parseConfig([], {})).toMatchObject({ kind: 'config', config: { dockerHost: undefined } })
    expect(parseConfig(['--docker-host', 'none', '--metrics-interval', '30'], {})).toMatchObject({ kind: 'config', config: { dockerHost: 'none', metricsIntervalSeconds: 30 } })
    expect(parseConfig(['--docker-host', 'ftp://x'], {})).toMatchObject({ kind: 'error', message: expect.stringContaining('--docker-host: expected unix:///path/to/socket') })
  })

  it('finds the first default socket that exists, and probes it', async () => {
    const dir = await tempDir()
    cleanups.push(dir.cleanup)
    const systemSocket = existsSync('/var/run/docker.sock') || existsSync('/run/podman/podman.sock')
    if (!systemSocket) expect(await defaultDockerHost({ XDG_RUNTIME_DIR: dir.path })).toBe(null)
    await mkdir(join(dir.path, 'podman'))
    const sock = join(dir.path, 'podman', 'podman.sock')
    // Something listens, but it is no Engine API.
    const srv = createHttpServer((_, res) => res.writeHead(404).end('not here')).listen(sock)
    await new Promise((r) => srv.once('listening', r))
    cleanups.push(() => new Promise<void>((r) => (srv.closeAllConnections(), srv.close(() => r()))))
    if (!systemSocket) expect(await defaultDockerHost({ XDG_RUNTIME_DIR: dir.path })).toBe(`unix://${sock}`)
    const probe = await probeDocker(`unix://${sock}`, 1000)
    expect(probe).toMatchObject({ ok: false, reason: expect.stringContaining('not here') })
    expect(await probeDocker(`unix://${dir.path}/nope.sock`)).toEqual({ ok: false, reason: `no socket at ${dir.path}/nope.sock` })
    expect(await probeDocker('ssh://x')).toMatchObject({ ok: false, reason: expect.stringContaining('unsupported') })
  })

  it('probes with /_ping alone: an engine whose /version is slow (Podman samples CPU for a second) is still found', async () => {
    const dir = await tempDir()
    cleanups.push(dir.cleanup)
    const sock = join(dir.path, 'engine.sock')
    const hung: import('node:http').ServerResponse[] = []
    const srv = createHttpServer((req, res) => {
      if (req.url === '/_ping') return res.writeHead(200, { 'Api-Version': '1.41', 'Libpod-Api-Version': '4.3.1', Server: 'Libpod/4.3.1 (linux)' }).end('OK')
      hung.push(res) // /version and anything else never answer
    }).listen(sock)
    await new Promise((r) => srv.once('listening', r))
    cleanups.push(() => new Promise<void>((r) => (srv.closeAllConnections(), srv.close(() => r()))))
    const probe = await probeDocker(`unix://${sock}`, 1000)
    expect(probe).toMatchObject({ ok: true, engine: 'podman', apiVersion: '1.41', version: '4.3.1' })
    expect(hung).toHaveLength(0)
  })

  it('maps a spec to a container: command, env, ports, limits, labels, init, no engine restart policy', () => {
    const inst = makeInstance({
      appName: 'shop',
      ordinal: 2,
      spec: {
        driver: 'docker',
        image: 'localhost/busybox:1',
        command: 'httpd',
        args: ['-f', '-p', '8080'],
        env: { A: '1', PORT: 'overridden' },
        ports: [
          { name: 'http', containerPort: 8080, hostPort: 31000 },
          { name: 'admin-ui', containerPort: null, hostPort: 31001 },
        ],
        cpuMillis: 500,
        memoryMb: 64,
        stopGraceSeconds: 7,
      },
    })
    const c = containerConfig(inst, 'node-a')
    expect(c).toMatchObject({
      name: `alveary-${inst.instanceId}`,
      Image: 'localhost/busybox:1',
      Cmd: ['httpd', '-f', '-p', '8080'],
      ExposedPorts: { '8080/tcp': {}, '31001/tcp': {} },
      HostConfig: {
        PortBindings: { '8080/tcp': [{ HostIp: '0.0.0.0', HostPort: '31000' }], '31001/tcp': [{ HostIp: '0.0.0.0', HostPort: '31001' }] },
        NanoCpus: 500_000_000,
        Memory: 64 * 1024 * 1024,
        Init: true,
        RestartPolicy: { Name: 'no' },
      },
      Labels: {
        'alveary.managed': 'true',
        'alveary.tenant': inst.tenantId,
        'alveary.app': inst.appId,
        'alveary.instance': inst.instanceId,
        'alveary.generation': '1',
        'alveary.node': 'node-a',
        'alveary.stop-grace': '7',
      },
    })
    expect(c.Entrypoint).toBeUndefined()
    expect(c.Env).toEqual(
      expect.arrayContaining(['A=1', 'PORT=8080', 'PORT_HTTP=8080', 'PORT_ADMIN_UI=31001', `ALVEARY_INSTANCE_ID=${inst.instanceId}`, 'ALVEARY_APP=shop', 'ALVEARY_ORDINAL=2']),
    )
    expect(c.Env).not.toContain('PORT=overridden')
    // Args only: they are the Cmd; neither: the image's own.
    expect(containerConfig({ ...inst, spec: { ...inst.spec, command: null, args: ['x'] } }, 'n').Cmd).toEqual(['x'])
    expect('Cmd' in containerConfig({ ...inst, spec: { ...inst.spec, command: null, args: [] } }, 'n')).toBe(false)
    expect(containerConfig(inst, 'n', { hostIp: publishHostIp('podman') }).HostConfig?.PortBindings['8080/tcp'][0].HostIp).toBe('')
  })

  it('hardens every container: never privileged, minimal capabilities, no-new-privileges, a pids limit, no host namespaces, no swap', () => {
    const inst = makeInstance({ spec: { driver: 'docker', image: 'localhost/busybox:1', memoryMb: 64 } })
    const h = containerConfig(inst, 'n', { pidsLimit: 77 }).HostConfig!
    expect(h).toMatchObject({ Privileged: false, CapDrop: ['ALL'], SecurityOpt: ['no-new-privileges'], PidsLimit: 77, PidMode: '', IpcMode: 'private', MemorySwap: 64 * 1024 * 1024 })
    expect(h.CapAdd).not.toContain('NET_RAW')
    expect(h.CapAdd).not.toContain('SYS_ADMIN')
    expect(h.NetworkMode).toBeUndefined()
    expect(containerConfig(inst, 'n').HostConfig!.PidsLimit).toBe(1024)
    expect(h.ReadonlyRootfs).toBeUndefined()
  })

  it('takes the app’s pids limit up to the node’s, and a read-only root with a /tmp tmpfs when the app asks', () => {
    const inst = makeInstance({ spec: { driver: 'docker', image: 'localhost/busybox:1', pidsMax: 50, readOnlyRootfs: true } })
    const h = containerConfig(inst, 'n', { pidsLimit: 77 }).HostConfig!
    expect(h).toMatchObject({ PidsLimit: 50, ReadonlyRootfs: true, Tmpfs: { '/tmp': expect.stringContaining('mode=1777') } })
    expect(containerConfig(makeInstance({ spec: { driver: 'docker', image: 'x', pidsMax: 500 } }), 'n', { pidsLimit: 77 }).HostConfig!.PidsLimit).toBe(77)
  })

  it('in a user namespace of its own: auto with 65536 ids, and volumes given to the container’s user at start (not the resolv.conf)', () => {
    const inst = makeInstance({ spec: { driver: 'docker', image: 'localhost/busybox:1' } })
    const mounts = [{ volumeId: 'v', name: 'data', hostPath: '/var/lib/alveary/volumes/v/data', path: '/data', fence: null }]
    const onNet = { ...inst, interfaces: [{ networkId: '00000000-0000-4000-8000-000000000009', ip: '100.64.0.7', mac: '02:a1:64:40:00:07', prefixLength: 24, gateway: '100.64.0.1' }] }
    const h = containerConfig(onNet, 'n', { userns: true, mounts, network: { netns: '/run/netns/a1-i-x', resolvConf: '/etc/netns/a1-i-x/resolv.conf', join: 'pid' } }).HostConfig!
    expect(h.UsernsMode).toBe('auto:size=65536')
    expect(h.Binds).toEqual(['/var/lib/alveary/volumes/v/data:/data:rw,U', '/etc/netns/a1-i-x/resolv.conf:/etc/resolv.conf:ro'])
    const plain = containerConfig(inst, 'n', { mounts }).HostConfig!
    expect(plain.UsernsMode).toBeUndefined()
    expect(plain.Binds).toEqual(['/var/lib/alveary/volumes/v/data:/data:rw'])
  })

  it('puts a tenant-network container in its namespace (by path, or none to be adopted), publishes nothing, and mounts the network’s resolv.conf', () => {
    const inst = makeInstance({ spec: { driver: 'docker', image: 'localhost/busybox:1', ports: [{ name: 'http', containerPort: null, hostPort: 31000 }] } })
    const onNet = { ...inst, interfaces: [{ networkId: '00000000-0000-4000-8000-000000000009', ip: '100.64.0.7', mac: '02:a1:64:40:00:07', prefixLength: 24, gateway: '100.64.0.1' }] }
    const network = { netns: '/run/netns/a1-i-x', resolvConf: '/etc/netns/a1-i-x/resolv.conf' }
    const byPath = containerConfig(onNet, 'n', { network: { ...network, join: 'path' } })
    expect(byPath.HostConfig?.NetworkMode).toBe('ns:/run/netns/a1-i-x')
    expect(byPath.HostConfig?.PortBindings).toEqual({})
    expect(byPath.HostConfig?.Binds).toEqual(['/etc/netns/a1-i-x/resolv.conf:/etc/resolv.conf:ro'])
    expect(byPath.Env).toContain('ALVEARY_IP=100.64.0.7')
    expect(containerConfig(onNet, 'n', { network: { ...network, join: 'pid' } }).HostConfig?.NetworkMode).toBe('none')
    // Host networking: no namespace even when one is offered.
    expect(containerConfig(inst, 'n', { network: { ...network, join: 'path' } }).HostConfig?.NetworkMode).toBeUndefined()
  })

  it('parses engine timestamps to nanoseconds (Docker: nanoseconds, Podman: seconds)', () => {
    const s = parseTimestampNs('2026-01-02T03:04:05Z')!
    expect(parseTimestampNs('2026-01-02T03:04:05.000000001Z')).toBe(s + 1n)
    expect(parseTimestampNs('2026-01-02T03:04:05.5Z')).toBe(s + 500_000_000n)
    expect(parseTimestampNs('2026-01-02T04:04:05+01:00')).toBe(s)
    expect(parseTimestampNs('garbage')).toBe(null)
  })

  it('explains exits and daemon errors', () => {
    expect(exitInfoOf({ ExitCode: 137 })).toEqual({ exitCode: 137, signal: 'SIGKILL', message: 'terminated by SIGKILL' })
    expect(exitInfoOf({ ExitCode: 3 })).toEqual({ exitCode: 3, signal: null, message: 'exited with code 3' })
    expect(exitInfoOf({ ExitCode: 137, OOMKilled: true }, 64 * 1024 * 1024)).toEqual({ exitCode: 137, signal: 'SIGKILL', oomKilled: true, message: 'killed: out of memory (memory limit 64 MiB)' })
    expect(exitInfoOf({ ExitCode: 137 }, 64 * 1024 * 1024).message).toBe('terminated by SIGKILL (out of memory? memory limit 64 MiB)')
    expect(daemonMessage({ statusCode: 404, message: '(HTTP code 404) no such image - failed to find image x: No such image ', json: null })).toBe('failed to find image x: No such image')
    expect(daemonMessage({ statusCode: 500, json: { message: 'boom' }, message: 'x' })).toBe('boom')
  })
})

describe('a node without the docker driver', () => {
  it('fails docker instances clearly and does not retry them', async () => {
    const dir = await tempDir()
    cleanups.push(dir.cleanup)
    const sup = createSupervisor({
      drivers: { process: createProcessDriver({ dataDir: dir.path }) },
      store: createStateStore(dir.path),
      logger: testLogger,
      backoff: { baseMs: 50 },
    })
    cleanups.push(() => sup.detach())
    const inst = makeInstance({ spec: { driver: 'docker', image: 'localhost/busybox:1', command: null, args: [] } })
    sup.apply([inst])
    await waitFor('failed', () => sup.report(inst.instanceId)?.state === 'failed')
    // Handled: a retry would have been scheduled and announced by now.
    await sup.settled()
    expect(sup.report(inst.instanceId)).toMatchObject({ state: 'failed', restarts: 0, message: 'the docker driver is not available on this node' })
  })
})

describe('state files', () => {
  it('loads files written before the docker driver (and lastExit) existed', async () => {
    const dir = await tempDir()
    cleanups.push(dir.cleanup)
    const id = '11111111-1111-4111-8111-111111111111'
    await mkdir(join(dir.path, 'instances', id), { recursive: true })
    const old = { instanceId: id, pid: 123, processStartTime: 5, specHash: 'h', generation: 1, startedAt: null, restarts: 0, state: 'running', exitCode: null, message: null, stopGraceSeconds: 10 }
    await writeFile(join(dir.path, 'instances', id, 'state.json'), JSON.stringify(old))
    expect(await createStateStore(dir.path).loadAll()).toEqual([{ ...old, driver: 'process', containerId: null, logCursor: null, fence: null, lastExit: null }])
  })
})
