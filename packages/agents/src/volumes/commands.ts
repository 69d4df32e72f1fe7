/**
 * Runs the one-shot commands of moves on this node (prepare an instance, receive or send
 * a volume copy, discard a copy) and answers each with its correlation id. An id is run at
 * most once: asked again (a resent command after a reconnect), it answers from memory.
 */
import type { Logger } from 'pino'
import type { TAgentCommand, TCommandFrame, TCommandProgressFrame, TCommandResult, TCommandResultFrame } from '@alveary/core/protocol'
import type { DriverName, RuntimeDriver } from '../runtime/types'
import { openReceive, sendVolume, type ReceiveSession } from './copy'
import { discardVolume, ensureVolume, type VolumeDirs } from './store'

const REMEMBERED = 500
const PROGRESS_EVERY_MS = 250

export interface CommandRunnerDeps {
  dirs: VolumeDirs
  /** The node's address, where receiving copies listen. */
  address: string
  /** Private scratch (rsync daemon configs). */
  workDir: string
  drivers: Partial<Record<DriverName, RuntimeDriver>>
  /** Volumes mounted by instances of this node that are running or starting: never discarded. */
  mounted(): ReadonlySet<string>
  send(frame: TCommandResultFrame | TCommandProgressFrame): void
  /** Waits (bounded) until an instance is stopped here for good (Supervisor.whenStopped). */
  whenStopped(instanceId: string, timeoutMs: number): Promise<boolean>
  /** Waits (bounded) until the network of an instance a move stages here is prepared; false: it was not. */
  stageNetwork(instanceId: string, timeoutMs: number): Promise<boolean>
  log: Logger
}

/** How long a prepare waits for the desired state that stages the instance's network. */
const STAGE_WAIT_MS = 30_000
/** How long a send held for a stop waits (the move's stop-source step gives up after as long). */
const STOP_WAIT_MS = 10 * 60_000

export function createCommandRunner(deps: CommandRunnerDeps) {
  const answered = new Map<string, TCommandResultFrame>()
  const running = new Set<string>()
  const sessions = new Map<string, ReceiveSession>()
  const keyOf = (volumes: { volumeId: string }[]) => volumes.map((v) => v.volumeId).sort().join(',')

  async function execute(id: string, cmd: TAgentCommand): Promise<TCommandResult> {
    switch (cmd.kind) {
      case 'prepare-instance': {
        const network = cmd.instanceId ? deps.stageNetwork(cmd.instanceId, STAGE_WAIT_MS) : Promise.resolve(true)
        for (const v of cmd.volumes) await ensureVolume(deps.dirs, v)
        if (cmd.image) {
          const driver = deps.drivers[cmd.driver]
          if (!driver) throw new Error(`the ${cmd.driver} driver is not available on this node`)
          await driver.prepare?.(cmd.image)
        }
        // Not fatal: an unstaged instance attaches its network at start (slower, as before staging).
        if (!(await network)) deps.log.warn({ instanceId: cmd.instanceId }, 'the instance’s network was not staged in time; it attaches at start')
        return {}
      }
      case 'receive-volumes': {
        const key = keyOf(cmd.volumes)
        await sessions.get(key)?.close()
        const volumes = []
        for (const v of cmd.volumes) {
          if (deps.mounted().has(v.volumeId)) throw new Error(`volume ${v.volumeId} is mounted by an instance here: it cannot receive a copy`)
          volumes.push({ volumeId: v.volumeId, dataDir: await ensureVolume(deps.dirs, v) })
        }
        const session = await openReceive({ address: deps.address, volumes, secret: cmd.secret, workDir: deps.workDir, log: deps.log })
        sessions.set(key, session)
        return { port: session.port }
      }
      case 'close-receive': {
        const key = keyOf(cmd.volumes)
        await sessions.get(key)?.close()
        sessions.delete(key)
        return {}
      }
      case 'send-volumes': {
        // A move's final copy sent with the stop: it starts the moment the instance is gone here,
        // not after the stop's report has gone round the control plane and back.
        if (cmd.afterStopOf && !(await deps.whenStopped(cmd.afterStopOf, STOP_WAIT_MS))) throw new Error('the instance did not stop here')
        const started = Date.now()
        let total = 0
        let last = 0
        for (const [i, v] of cmd.volumes.entries()) {
          const source = await ensureVolume(deps.dirs, v)
          const { bytes } = await sendVolume({
            source,
            volumeId: v.volumeId,
            to: cmd.to,
            secret: cmd.secret,
            onProgress: (p) => {
              if (Date.now() - last < PROGRESS_EVERY_MS) return
              last = Date.now()
              deps.send({ type: 'command-progress', id, progress: { fraction: (i + p.fraction) / cmd.volumes.length, bytes: total + p.bytes, detail: p.rate } })
            },
          })
          total += bytes
        }
        return { bytes: total, ms: Date.now() - started }
      }
      case 'discard-volumes': {
        const mounted = deps.mounted()
        for (const v of cmd.volumes) {
          if (mounted.has(v.volumeId)) throw new Error(`volume ${v.volumeId} is mounted by an instance here`)
          await discardVolume(deps.dirs, v)
        }
        return {}
      }
    }
  }

  function answer(frame: TCommandResultFrame) {
    answered.set(frame.id, frame)
    if (answered.size > REMEMBERED) answered.delete(answered.keys().next().value!)
    deps.send(frame)
  }

  return {
    handle(frame: TCommandFrame): void {
      const done = answered.get(frame.id)
      if (done) return deps.send(done)
      if (running.has(frame.id)) return
      running.add(frame.id)
      deps.log.info({ id: frame.id, kind: frame.command.kind }, 'command')
      void execute(frame.id, frame.command)
        .then(
          (result) => answer({ type: 'command-result', id: frame.id, ok: true, result }),
          (err: Error) => {
            deps.log.warn({ id: frame.id, kind: frame.command.kind, err: err.message }, 'command failed')
            answer({ type: 'command-result', id: frame.id, ok: false, error: err.message.slice(0, 2000) })
          },
        )
        .finally(() => running.delete(frame.id))
    },
    /** Ends the copy sessions into these volumes: an instance is about to mount one (never two writers). */
    async closeSessionsOf(volumeIds: readonly string[]): Promise<void> {
      const ids = new Set(volumeIds)
      const into = [...sessions].filter(([key]) => key.split(',').some((id) => ids.has(id)))
      for (const [key] of into) sessions.delete(key)
      await Promise.all(into.map(([, s]) => s.close()))
    },
    async close(): Promise<void> {
      await Promise.all([...sessions.values()].map((s) => s.close()))
      sessions.clear()
    },
  }
}
