/** Whether this node runs containers: the Docker or Podman engine at --docker-host, or the one found. */
import type Docker from 'dockerode'
import type { Logger } from 'pino'
import type { TContainerCapability } from '@alveary/core/protocol'
import type { AgentConfig } from '../../config'
import { createDockerDriver, type DockerDriver } from './driver'
import { defaultDockerHost, probeDocker } from './endpoint'

/** The docker driver, or null (said in the log why) when none is configured, found or answering. */
export async function detectDocker(config: AgentConfig, log: Logger, pullTimeoutMs?: number): Promise<{ driver: DockerDriver; engine: 'docker' | 'podman'; capability: TContainerCapability } | null> {
  if (config.dockerHost === 'none') return null
  const host = config.dockerHost ?? (await defaultDockerHost())
  if (!host) {
    log.info('docker driver unavailable: no Docker or Podman socket found (pass --docker-host)')
    return null
  }
  const probe = await probeDocker(host)
  if (!probe.ok) {
    log[config.dockerHost ? 'warn' : 'info']({ dockerHost: host }, `docker driver unavailable: ${probe.reason}`)
    return null
  }
  const driver = createDockerDriver({
    docker: probe.docker,
    nodeName: config.name,
    logger: log,
    pullTimeoutMs,
    engine: probe.engine,
    pidsLimit: config.sandboxPidsMax,
  })
  const capability = containerCapability(probe.engine, await securityOptions(probe.docker, log))
  log.info({ dockerHost: host, engine: probe.engine, version: probe.version, apiVersion: probe.apiVersion, userns: capability.userns }, 'docker driver available')
  return { driver, engine: probe.engine, capability }
}

/** The engine's SecurityOptions from /info (e.g. "name=userns", "name=rootless"); none when it does not say. */
async function securityOptions(docker: Docker, log: Logger): Promise<string[]> {
  try {
    const info = (await Promise.race([docker.info(), new Promise((_, reject) => setTimeout(() => reject(new Error('no answer to /info within 5 s')), 5_000).unref())])) as { SecurityOptions?: unknown }
    return Array.isArray(info.SecurityOptions) ? info.SecurityOptions.filter((o): o is string => typeof o === 'string') : []
  } catch (err) {
    log.warn({ err: (err as Error).message }, 'cannot read the container engine\'s security options; advertising no user namespaces')
    return []
  }
}

/** Container root is an unprivileged host uid when the engine remaps it (userns-remap) or runs rootless. */
export function containerCapability(engine: 'docker' | 'podman', options: string[]): TContainerCapability {
  const has = (name: string) => options.some((o) => o.split(',').includes(`name=${name}`))
  const rootless = has('rootless')
  return { engine, userns: rootless || has('userns'), rootless }
}
