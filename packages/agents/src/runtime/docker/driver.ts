/**
 * The docker driver: one instance = one container, through the Docker Engine API (Docker, or
 * Podman's Docker-compatible service). Containers carry alveary.* labels, so a restarted agent
 * finds and re-adopts them by id; the engine's own restart policy stays off: restarts are the
 * supervisor's job, the same for every driver.
 */
import type Docker from 'dockerode'
import type { Logger } from 'pino'
import type { TDesiredInstance } from '@alveary/core/protocol'
import { ZPersistedInstance, type PersistedInstance } from '../../state-store'
import { SpawnError, type InstanceHandle, type InstanceUsage, type RuntimeDriver, type StartContext, type StartHooks } from '../types'
import { containerConfig, containerName, LABELS, publishHostIp } from './config'
import { daemonMessage, statusOf } from './errors'
import { containerHandle, removeContainer as remove } from './handle'
import { engineCalls } from './deadline'
import { createImageStore } from './images'

export interface DockerDriverOptions {
  docker: Docker
  /** Written to the alveary.node label: which agent owns a container. */
  nodeName: string
  logger: Logger
  /** A pull taking longer fails (and is retried with the restart backoff). Default 10 minutes. */
  pullTimeoutMs?: number
  /** Any other engine request not answered by then fails with a clear error (a hung engine). Default 30s. */
  callTimeoutMs?: number
  /** Containers are also inspected this often, in case a wait on them is lost. Default 30s. */
  verifyMs?: number
  /** Which engine answers (from probeDocker): decides the HostIp of published ports. Default docker. */
  engine?: 'docker' | 'podman'
  /**
   * How containers join their tenant network's namespace: by path (Podman's `ns:` mode) or by
   * adoption after start (Docker has no `ns:` mode). Default: path on Podman, pid on Docker and
   * on Podman with usernsAuto (a container cannot mount /sys in a namespace its user namespace
   * does not own, so it must get its own from the engine).
   */
  netnsJoin?: 'path' | 'pid'
  /** Processes and threads per container (PidsLimit). Default DEFAULT_PIDS_LIMIT. */
  pidsLimit?: number
  /** Every container gets a user namespace of its own (Podman, where detectContainerCapability found it works). */
  usernsAuto?: boolean
}

export interface DockerDriver extends RuntimeDriver {
  readonly name: 'docker'
}

export function createDockerDriver(opts: DockerDriverOptions): DockerDriver {
  const { docker, nodeName } = opts
  const log = opts.logger.child({ driver: 'docker' })
  const hostIp = publishHostIp(opts.engine ?? 'docker')
  const userns = opts.usernsAuto ?? false
  const join = opts.netnsJoin ?? (opts.engine === 'podman' && !userns ? 'path' : 'pid')
  const cpuPrev = new Map<string, { total: number; at: number }>()
  const call = engineCalls(opts.callTimeoutMs ?? 30_000)
  const removeContainer = (c: Docker.Container) => remove(c, log, call)
  const { ensureImage } = createImageStore({ docker, log, call, pullTimeoutMs: opts.pullTimeoutMs ?? 10 * 60_000 })
  const handleDeps = { docker, log, call, verifyMs: opts.verifyMs ?? 30_000, removeContainer }
  const makeHandle = (c: Docker.Container, info: Docker.ContainerInspectInfo, adopted: boolean) => containerHandle(handleDeps, c, info, adopted)

  async function removeByName(instanceId: string): Promise<void> {
    const c = docker.getContainer(containerName(instanceId))
    try {
      await call('inspect', (abortSignal) => c.inspect({ abortSignal }))
    } catch (err) {
      if (statusOf(err) === 404) return
      throw err
    }
    await removeContainer(c)
  }

  async function start(instance: TDesiredInstance, hooks?: StartHooks, ctx: StartContext = {}): Promise<InstanceHandle> {
    const image = instance.spec.image
    if (!image) throw new SpawnError('the docker driver needs an image, and the spec has none', true)
    await ensureImage(image, hooks)
    const onNetwork = instance.interfaces.length > 0
    if (onNetwork && (!ctx.netns || (join === 'pid' && !ctx.attachNetns))) throw new SpawnError('the instance is on a tenant network but has no prepared namespace')
    const config = containerConfig(instance, nodeName, {
      hostIp,
      ...(opts.pidsLimit && { pidsLimit: opts.pidsLimit }),
      userns,
      mounts: ctx.mounts,
      ...(onNetwork && ctx.netns && { network: { netns: ctx.netns, join, ...(ctx.resolvConf && { resolvConf: ctx.resolvConf }) } }),
    })
    // A container of an earlier run (exited, or left by a crashed agent) holds the name.
    await removeByName(instance.instanceId).catch((err) => log.warn({ err: daemonMessage(err) }, 'cannot remove the previous container'))
    let container: Docker.Container
    try {
      container = await call('create', (abortSignal) => docker.createContainer({ ...config, abortSignal }))
    } catch (err) {
      if (statusOf(err) !== 409) throw new SpawnError(`cannot create the container: ${daemonMessage(err)}`)
      await removeByName(instance.instanceId).catch(() => {})
      try {
        container = await call('create', (abortSignal) => docker.createContainer({ ...config, abortSignal }))
      } catch (err2) {
        throw new SpawnError(`cannot create the container: ${daemonMessage(err2)}`)
      }
    }
    try {
      await call('start', (abortSignal) => container.start({ abortSignal }))
    } catch (err) {
      await removeContainer(container)
      const msg = daemonMessage(err)
      if (/address already in use|port is already allocated/i.test(msg)) {
        const port = instance.spec.ports.find((p) => msg.includes(`:${p.hostPort}`))
        throw new SpawnError(`${port ? `host port ${port.hostPort}` : 'a host port'} is already in use on this node: ${msg}`)
      }
      throw new SpawnError(`cannot start the container: ${msg}`)
    }
    let info: Docker.ContainerInspectInfo
    try {
      info = await call('inspect', (abortSignal) => container.inspect({ abortSignal }))
    } catch (err) {
      await removeContainer(container)
      throw new SpawnError(`the container vanished right after starting: ${daemonMessage(err)}`)
    }
    if (onNetwork && join === 'pid') {
      // Until this is done the container has loopback only (moments: one overlay pass).
      try {
        if (!info.State.Pid) throw new Error('the engine reports no pid')
        await ctx.attachNetns!(info.State.Pid)
      } catch (err) {
        await removeContainer(container)
        throw new SpawnError(`cannot attach the container to its network: ${(err as Error).message}`)
      }
    }
    return makeHandle(container, info, false)
  }

  async function adopt(rec: PersistedInstance): Promise<InstanceHandle | null> {
    const container = docker.getContainer(rec.containerId ?? containerName(rec.instanceId))
    let info: Docker.ContainerInspectInfo
    try {
      info = await call('inspect', (abortSignal) => container.inspect({ abortSignal }))
    } catch (err) {
      if (statusOf(err) !== 404) log.warn({ instanceId: rec.instanceId, err: daemonMessage(err) }, 'cannot inspect the container to re-adopt it')
      return null
    }
    const labels = info.Config.Labels ?? {}
    if (labels[LABELS.instance] !== rec.instanceId || !info.State.Running) return null
    return makeHandle(docker.getContainer(info.Id), info, true)
  }

  async function listOwned(): Promise<Docker.ContainerInfo[]> {
    return call('list containers', (abortSignal) => docker.listContainers({ all: true, filters: { label: [`${LABELS.managed}=true`, `${LABELS.node}=${nodeName}`] }, abortSignal }))
  }

  return {
    name: 'docker',
    start,
    adopt,
    prepare: (image) => ensureImage(image),
    async release(instanceId) {
      try {
        await removeByName(instanceId)
      } catch (err) {
        log.warn({ instanceId, err: daemonMessage(err) }, 'cannot remove the container of a stopped instance')
      }
    },
    async discover(known) {
      const out: PersistedInstance[] = []
      for (const c of await listOwned()) {
        const labels = c.Labels ?? {}
        const id = labels[LABELS.instance]
        if (!id || known.has(id) || c.State !== 'running') continue
        const parsed = ZPersistedInstance.safeParse({
          instanceId: id,
          driver: 'docker',
          pid: null,
          containerId: c.Id,
          processStartTime: null,
          specHash: labels[LABELS.specHash] ?? '',
          generation: Number(labels[LABELS.generation]) || 0,
          startedAt: new Date(c.Created * 1000).toISOString(),
          restarts: 0,
          state: 'running',
          exitCode: null,
          message: null,
          stopGraceSeconds: Number(labels[LABELS.stopGrace]) || 10,
          logCursor: null,
        })
        if (parsed.success) {
          log.info({ instanceId: id, container: c.Id.slice(0, 12) }, 'found a running container without state file')
          out.push(parsed.data)
        }
      }
      return out
    },
    async removeOrphans(keep) {
      for (const c of await listOwned()) {
        const id = c.Labels?.[LABELS.instance]
        if (id && keep.has(id)) continue
        log.info({ instanceId: id, container: c.Id.slice(0, 12), state: c.State }, 'removing an orphan container of this node')
        await removeContainer(docker.getContainer(c.Id))
      }
    },
    async usage(handles) {
      const out = new Map<InstanceHandle, InstanceUsage>()
      const live = new Set(handles.map((h) => h.id))
      for (const id of cpuPrev.keys()) if (!live.has(id)) cpuPrev.delete(id)
      const queue = [...handles]
      const worker = async () => {
        for (let h = queue.shift(); h; h = queue.shift()) {
          try {
            const st = await call('stats', (abortSignal) => docker.getContainer(h.id).stats({ stream: false, 'one-shot': true, abortSignal } as { stream: false }))
            const total = st.cpu_stats?.cpu_usage?.total_usage ?? 0
            const read = Date.parse(st.read)
            const at = read > 946_684_800_000 ? read : Date.now()
            // First sample: the average since the container started.
            const prev = cpuPrev.get(h.id) ?? { total: 0, at: (h as InstanceHandle & { startedAtMs?: number }).startedAtMs ?? at }
            const elapsedNs = (at - prev.at) * 1e6
            const cpuMillis = elapsedNs > 0 && total >= prev.total ? Math.round(((total - prev.total) / elapsedNs) * 1000) : 0
            cpuPrev.set(h.id, { total, at })
            out.set(h, { cpuMillis, memoryMb: Math.round((st.memory_stats?.usage ?? 0) / 1024 / 1024) })
          } catch (err) {
            if (statusOf(err) !== 404) log.debug({ container: h.id, err: daemonMessage(err) }, 'cannot read container stats')
          }
        }
      }
      await Promise.all(Array.from({ length: Math.min(8, handles.length) }, worker))
      return out
    },
  }
}
