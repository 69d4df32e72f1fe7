/**
 * Whether container root is an unprivileged uid on the host, and who makes it so: the engine for
 * every container (Docker's daemon-wide userns-remap, or a rootless engine), or this agent, which
 * asks rootful Podman for a user namespace of its own per container (--userns=auto). Podman can
 * only when /etc/subuid and /etc/subgid give user `containers` a range, which no API reports for
 * a rootful engine: so the agent asks for one and sees whether the engine refuses.
 */
import { randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import type Docker from 'dockerode'
import type { Logger } from 'pino'
import type { TContainerCapability } from '@alveary/core/protocol'
import { engineCalls } from './deadline'
import { daemonMessage } from './errors'

/**
 * The user namespace of every tenant container on Podman: 65536 ids of its own from the
 * `containers` range (Docker's userns-remap size: an image's `nobody`, 65534, exists in it).
 */
export const USERNS_AUTO = 'auto:size=65536'

export type UsernsProbe = { ok: true } | { ok: false; reason: string }

/** What the engine does itself (its /info), and for rootful Podman what it answers when asked for a user namespace. */
export async function detectContainerCapability(engine: 'docker' | 'podman', docker: Docker, log: Logger): Promise<TContainerCapability> {
  const options = await securityOptions(docker, log)
  const auto = engine === 'podman' && !engineMapsUsers(options) ? await probeUsernsAuto(docker) : undefined
  return containerCapability(engine, options, auto)
}

const hasOption = (options: string[], name: string) => options.some((o) => o.split(',').includes(`name=${name}`))
/** Every container is in a user namespace by the engine's own doing: userns-remap, or a rootless engine. */
const engineMapsUsers = (options: string[]) => hasOption(options, 'userns') || hasOption(options, 'rootless')

/** The engine's SecurityOptions from /info (e.g. "name=userns", "name=rootless"); none when it does not say. */
async function securityOptions(docker: Docker, log: Logger): Promise<string[]> {
  try {
    const info = (await engineCalls(5_000)('/info', () => docker.info())) as { SecurityOptions?: unknown }
    return Array.isArray(info.SecurityOptions) ? info.SecurityOptions.filter((o): o is string => typeof o === 'string') : []
  } catch (err) {
    log.warn({ err: (err as Error).message }, 'cannot read the container engine\'s security options; advertising no user namespaces')
    return []
  }
}

/**
 * Creates (never starts) a container with USERNS_AUTO and removes it: Podman allocates the ids
 * at creation. Its image is an empty tar imported under a name of its own (no registry, nothing
 * of the node's), removed after; concurrent probes of several agents on one engine do not meet.
 */
export async function probeUsernsAuto(docker: Docker, timeoutMs = 15_000): Promise<UsernsProbe> {
  const call = engineCalls(timeoutMs)
  const id = randomBytes(6).toString('hex')
  const image = `localhost/alveary-userns-probe:${id}`
  try {
    await call('image import', async (abortSignal) => {
      // An empty tar archive is two zero blocks.
      const progress = (await docker.importImage(Readable.from([Buffer.alloc(1024)]), { repo: image, abortSignal })) as NodeJS.ReadableStream
      await new Promise<void>((resolve, reject) =>
        docker.modem.followProgress(progress, (err: Error | null, output: Array<{ error?: string }> = []) => {
          const failed = err?.message ?? output.find((o) => o.error)?.error
          return failed ? reject(new Error(failed)) : resolve()
        }),
      )
    })
  } catch (err) {
    return { ok: false, reason: `cannot import the probe's empty image: ${daemonMessage(err)}` }
  }
  try {
    const c = await call('create', (abortSignal) => docker.createContainer({ name: `alveary-userns-probe-${id}`, Image: image, Cmd: ['/none'], HostConfig: { UsernsMode: USERNS_AUTO, NetworkMode: 'none' }, abortSignal }))
    // The engine agreed; a container it then fails to remove holds its ids, no more.
    await call('remove', (abortSignal) => c.remove({ force: true, abortSignal })).catch(() => {})
    return { ok: true }
  } catch (err) {
    return { ok: false, reason: daemonMessage(err) }
  } finally {
    await call('image remove', (abortSignal) => docker.getImage(image).remove({ abortSignal })).catch(() => {})
  }
}

/** Pure: the engine's SecurityOptions, and for rootful Podman what its probe found. */
export function containerCapability(engine: 'docker' | 'podman', options: string[], auto?: UsernsProbe): TContainerCapability {
  const rootless = hasOption(options, 'rootless')
  if (engineMapsUsers(options)) return { engine, userns: true, usernsMode: 'engine', rootless }
  if (auto?.ok) return { engine, userns: true, usernsMode: 'auto', rootless }
  return { engine, userns: false, rootless, reason: auto && !auto.ok ? podmanReason(auto.reason) : 'the engine does not remap users (Docker: enable its daemon-wide userns-remap)' }
}

function podmanReason(answer: string): string {
  // Podman's words when /etc/subuid or /etc/subgid has no (or too small a) range for `containers`.
  const hint = /available IDs|subuid|subgid|mappings for user/i.test(answer) ? ' (give user "containers" a range in /etc/subuid and /etc/subgid)' : ''
  return `Podman refused a user namespace: ${answer.replaceAll('\0', '')}`.slice(0, 300 - hint.length) + hint
}
