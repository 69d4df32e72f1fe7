/**
 * One running container as the supervisor sees it: watched through a streamed /wait (with a
 * periodic inspect as a safety net), stopped gracefully, followed for output.
 */
import type Docker from 'dockerode'
import type { Logger } from 'pino'
import type { ExitInfo, InstanceHandle } from '../types'
import type { EngineCall } from './deadline'
import { daemonMessage, sleep, statusOf } from './errors'
import { exitInfoOf } from './exit'
import { followContainer, type ContainerFollower } from './logs'

export interface HandleDeps {
  docker: Docker
  log: Logger
  call: EngineCall
  /** Containers are also inspected this often, in case a wait on them is lost. */
  verifyMs: number
  removeContainer(c: Docker.Container): Promise<void>
}

export function containerHandle(deps: HandleDeps, container: Docker.Container, info: Docker.ContainerInspectInfo, adopted: boolean): InstanceHandle {
  const { docker, log, call, verifyMs, removeContainer } = deps
  const hlog = log.child({ container: container.id.slice(0, 12) })
  const ac = new AbortController()
  let detached = false
  const followers = new Set<ContainerFollower>()
  const memory = info.HostConfig?.Memory ?? undefined
  const startedAtMs = Date.parse(info.State.StartedAt) || Date.now()
  const gone: ExitInfo = { exitCode: null, signal: null, message: 'the container was removed behind the agent' }

  let stopping: Promise<ExitInfo> | null = null
  let settled = false
  let settle!: (info: ExitInfo) => void
  const exited = new Promise<ExitInfo>((r) => (settle = r))
  const finish = (info: ExitInfo) => {
    if (settled || detached) return
    settled = true
    clearInterval(poll)
    ac.abort()
    settle(info)
  }

  /** The exit if the container is no longer running, null while it runs, undefined when the engine cannot tell. */
  async function checkExit(): Promise<ExitInfo | null | undefined> {
    try {
      const st = await call('inspect', (abortSignal) => container.inspect({ abortSignal }))
      // The OOM hint only for exits the agent did not cause.
      return st.State.Running ? null : exitInfoOf(st.State, stopping ? undefined : memory)
    } catch (err) {
      return statusOf(err) === 404 ? gone : undefined
    }
  }

  /**
   * One long poll on /wait, read as a stream: if the engine's service dies mid-request (Podman
   * restarting), the buffered API call would hang forever; a stream at least closes. It may
   * rightly last as long as the container runs, so it has no deadline: a hung engine is noticed
   * by the periodic inspect, which has one.
   */
  function waitOnce(): Promise<'answered' | 'broken'> {
    return new Promise((resolve) => {
      const opts = {
        path: `/containers/${container.id}/wait?`,
        method: 'POST',
        isStream: true,
        abortSignal: ac.signal,
        statusCodes: { 200: true, 404: 'no such container', 500: 'server error' },
        options: {},
      }
      const modem = docker.modem as unknown as { dial(o: typeof opts, cb: (err: unknown, res?: NodeJS.ReadableStream) => void): void }
      modem.dial(opts, (err, res) => {
        if (err || !res) return resolve('broken')
        let body = ''
        let answered = false
        res.on('data', (d: Buffer) => {
          body += d.toString()
          if (/"StatusCode"/.test(body)) answered = true
        })
        const end = () => resolve(answered ? 'answered' : 'broken')
        res.once('end', end)
        res.once('close', end)
        res.on('error', end)
      })
    })
  }

  async function watch(): Promise<void> {
    let failures = 0
    while (!settled && !detached) {
      const outcome = await waitOnce()
      if (settled || detached) return
      const exit = await checkExit()
      if (exit) return finish(exit)
      if (outcome === 'broken' || exit === undefined) {
        failures += 1
        if (failures === 1 || failures % 30 === 0) hlog.warn({ failures }, 'lost the wait on the container (engine unreachable?); retrying')
        await sleep(Math.min(5000, 200 * failures))
      } else {
        // Answered, yet running: never a tight loop.
        failures = 0
        await sleep(200)
      }
    }
  }
  // A safety net for a wait that is lost in some other way.
  const poll = setInterval(() => {
    void checkExit().then((exit) => exit && finish(exit))
  }, verifyMs)
  poll.unref()
  void watch().catch((err) => hlog.error({ err }, 'watching the container failed'))

  async function stop(graceSeconds: number): Promise<ExitInfo> {
    try {
      // The engine itself waits up to the grace before it kills.
      await call('stop', (abortSignal) => container.stop({ t: graceSeconds, abortSignal }), graceSeconds * 1000 + call.timeoutMs)
    } catch (err) {
      const code = statusOf(err)
      // 304: already stopped; 404: already gone.
      if (code !== 304 && code !== 404) {
        hlog.warn({ err: daemonMessage(err) }, 'stopping the container failed; killing it')
        await call('kill', (abortSignal) => container.kill({ abortSignal })).catch(() => {})
      }
    }
    let info = await Promise.race([exited, sleep((graceSeconds + 15) * 1000).then(() => null)])
    if (!info) {
      await call('kill', (abortSignal) => container.kill({ abortSignal })).catch(() => {})
      info = await Promise.race([exited, sleep(10_000).then(() => gone)])
    }
    // The last lines before removing the container (its logs go with it).
    await Promise.all([...followers].map((f) => f.stop()))
    await removeContainer(container)
    return info
  }

  return {
    driver: 'docker',
    id: container.id,
    pid: info.State.Pid > 0 ? info.State.Pid : null,
    processGroup: null,
    startTime: null,
    adopted,
    exited,
    stop(graceSeconds) {
      stopping ??= stop(graceSeconds)
      return stopping
    },
    detach() {
      detached = true
      clearInterval(poll)
      ac.abort()
      for (const f of followers) f.abort()
    },
    followLogs(from, sink) {
      // An adopted container without a stored cursor: only what it writes from now on.
      const start = from ?? (adopted ? { ts: new Date().toISOString().replace(/\.\d+Z$/, 'Z'), atTs: Number.MAX_SAFE_INTEGER } : null)
      const f = followContainer(docker, container, start, sink, hlog, call)
      followers.add(f)
      void f.done.then(() => followers.delete(f))
      return f
    },
    startedAtMs,
  } as InstanceHandle & { startedAtMs: number }
}

export async function removeContainer(c: Docker.Container, log: Logger, call: EngineCall): Promise<void> {
  try {
    await call('remove', (abortSignal) => c.remove({ force: true, v: true, abortSignal }))
  } catch (err) {
    const code = statusOf(err)
    if (code !== 404 && !/removal of container .* is already in progress/i.test(daemonMessage(err))) {
      log.warn({ container: c.id, err: daemonMessage(err) }, 'cannot remove the container')
    }
  }
}
