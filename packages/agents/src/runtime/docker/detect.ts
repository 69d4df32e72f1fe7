/** Whether this node runs containers: the Docker or Podman engine at --docker-host, or the one found. */
import type { Logger } from 'pino'
import type { TContainerCapability } from '@alveary/core/protocol'
import type { AgentConfig } from '../../config'
import { detectContainerCapability } from './capability'
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
  const capability = await detectContainerCapability(probe.engine, probe.docker, log)
  const driver = createDockerDriver({
    docker: probe.docker,
    nodeName: config.name,
    logger: log,
    pullTimeoutMs,
    engine: probe.engine,
    pidsLimit: config.sandboxPidsMax,
    usernsAuto: capability.usernsMode === 'auto',
  })
  log[capability.userns ? 'info' : 'warn'](
    { dockerHost: host, engine: probe.engine, version: probe.version, apiVersion: probe.apiVersion, userns: capability.usernsMode ?? false, ...(capability.reason && { reason: capability.reason }) },
    capability.userns ? 'docker driver available' : 'docker driver available; container root is host root (no user namespaces)',
  )
  return { driver, engine: probe.engine, capability }
}
