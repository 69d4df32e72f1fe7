/** Images: present, or pulled once however many instances wait for them. */
import type Docker from 'dockerode'
import type { Logger } from 'pino'
import { SpawnError, type StartHooks } from '../types'
import type { EngineCall } from './deadline'
import { daemonMessage, statusOf } from './errors'

export interface ImageStoreOptions {
  docker: Docker
  log: Logger
  call: EngineCall
  pullTimeoutMs: number
}

export function createImageStore({ docker, log, call, pullTimeoutMs }: ImageStoreOptions): { ensureImage(image: string, hooks?: StartHooks): Promise<void> } {
  const pulls = new Map<string, Promise<void>>()

  async function imagePresent(image: string): Promise<boolean> {
    try {
      await call('image inspect', () => docker.getImage(image).inspect())
      return true
    } catch (err) {
      if (statusOf(err) === 404) return false
      throw new SpawnError(`cannot inspect image "${image}": ${daemonMessage(err)}`)
    }
  }

  async function pull(image: string): Promise<void> {
    const notFound = (why: string) => new SpawnError(`image "${image}" not found: ${why}`)
    const signal = AbortSignal.timeout(pullTimeoutMs)
    let stream: NodeJS.ReadableStream
    try {
      stream = (await docker.pull(image, { abortSignal: signal })) as NodeJS.ReadableStream
    } catch (err) {
      throw notFound(signal.aborted ? `pull timed out after ${pullTimeoutMs / 1000}s` : daemonMessage(err))
    }
    const error = await new Promise<string | null>((resolve) => {
      docker.modem.followProgress(stream, (err: Error | null, output: Array<{ error?: string; errorDetail?: { message?: string } }>) => {
        if (err) return resolve(signal.aborted ? `pull timed out after ${pullTimeoutMs / 1000}s` : daemonMessage(err))
        const failed = (output ?? []).find((o) => o.error || o.errorDetail?.message)
        resolve(failed ? (failed.errorDetail?.message ?? failed.error ?? 'pull failed') : null)
      })
    })
    if (error) throw notFound(error)
    if (!(await imagePresent(image))) throw notFound('the pull finished but the image is not there')
  }

  async function ensureImage(image: string, hooks?: StartHooks): Promise<void> {
    if (await imagePresent(image)) return
    hooks?.onPulling?.(image)
    let p = pulls.get(image)
    if (!p) {
      log.info({ image }, 'pulling image')
      p = pull(image).finally(() => pulls.delete(image))
      pulls.set(image, p)
    }
    await p
    hooks?.onPulled?.(image)
  }

  return { ensureImage }
}
