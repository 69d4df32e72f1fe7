/**
 * The container engine for the docker driver tests: $DOCKER_HOST, else the socket of
 * scripts/podman/start.sh, else the driver's default sockets. Without one the tests are
 * skipped with the reason printed, except in CI (CI=true), where that is a failure.
 */
import { existsSync } from 'node:fs'
import type Docker from 'dockerode'
import { LABELS } from '../src/runtime/docker/config'
import { defaultDockerHost, probeDocker } from '../src/runtime/docker/endpoint'

/** Built by scripts/podman/start.sh from busybox-static: no registry needed. */
export const TEST_IMAGE = process.env.ALVEARY_TEST_IMAGE ?? 'localhost/busybox:1'

export interface Engine {
  host: string
  docker: Docker
  engine: 'docker' | 'podman'
}

export async function testEngine(): Promise<Engine | null> {
  const podmanSock = `${process.env.ALVEARY_PODMAN_DIR ?? '/tmp/alveary-podman'}/podman.sock`
  const host = process.env.DOCKER_HOST || (existsSync(podmanSock) ? `unix://${podmanSock}` : await defaultDockerHost())
  let reason: string
  if (!host) {
    reason = 'no DOCKER_HOST and no Docker/Podman socket (start one with: eval "$(scripts/podman/start.sh)")'
  } else {
    const probe = await probeDocker(host)
    if (!probe.ok) {
      reason = `${host}: ${probe.reason}`
    } else {
      try {
        await probe.docker.getImage(TEST_IMAGE).inspect()
        return { host, docker: probe.docker, engine: probe.engine }
      } catch {
        reason = `image ${TEST_IMAGE} is missing on ${host} (scripts/podman/start.sh imports it)`
      }
    }
  }
  if (process.env.CI === 'true' || process.env.CI === '1') throw new Error(`the docker driver tests need a container engine in CI: ${reason}`)
  console.warn(`[skipped] docker driver tests: ${reason}`)
  return null
}

export async function nodeContainers(docker: Docker, node: string): Promise<Docker.ContainerInfo[]> {
  return docker.listContainers({ all: true, filters: { label: [`${LABELS.node}=${node}`] } })
}

export async function instanceContainers(docker: Docker, instanceId: string): Promise<Docker.ContainerInfo[]> {
  return docker.listContainers({ all: true, filters: { label: [`${LABELS.instance}=${instanceId}`] } })
}

/** Last resort cleanup: every container labelled with this node. */
export async function removeNodeContainers(docker: Docker, node: string): Promise<void> {
  for (const c of await nodeContainers(docker, node).catch(() => [])) {
    await docker
      .getContainer(c.Id)
      .remove({ force: true })
      .catch(() => {})
  }
}

/** busybox httpd serving one line (written at start) on $PORT inside the container. */
export function httpdSpec(hostPort: number, over: Record<string, unknown> = {}) {
  return {
    driver: 'docker' as const,
    image: TEST_IMAGE,
    command: 'sh',
    args: ['-c', 'echo "replica $ALVEARY_ORDINAL on $PORT" > /tmp/index.html && exec httpd -f -p "$PORT" -h /tmp'],
    ports: [{ name: 'http', containerPort: 8080, hostPort }],
    memoryMb: 48,
    cpuMillis: 250,
    stopGraceSeconds: 2,
    ...over,
  }
}
