/**
 * One instance's worker: remembers only the latest target and converges towards it in its own
 * async loop (start, watch, restart with back-off, stop, persist); its output is output.ts's.
 */
import type { Logger } from 'pino'
import type { TDesiredInstance, TExitReason, TInstanceReport, TLastExit, TObservedState } from '@alveary/core/protocol'
import type { Action, KnownInstance } from '../reconciler'
import { SpawnError, type DriverName, type ExitInfo, type InstanceHandle, type LogCursor, type RuntimeDriver } from '../runtime/types'
import type { PersistedInstance, StateStore } from '../state-store'
import { InstanceOutput } from './output'
import { restartDelay, wantsRestart, type RestartBackoff } from './restart-policy'
import type { InstanceVolumes } from '../volumes/instance-volumes'
import type { SupervisorOptions } from './types'

const MAX_MESSAGE = 2000
const truncate = (s: string | null) => (s && s.length > MAX_MESSAGE ? `${s.slice(0, MAX_MESSAGE - 1)}…` : s)
const ended = (reason: TExitReason, info: Pick<ExitInfo, 'exitCode' | 'signal'>, message: string): TLastExit => ({
  reason,
  exitCode: info.exitCode,
  signal: info.signal,
  message: truncate(message) ?? '',
  at: new Date().toISOString(),
})

export interface WorkerDeps {
  drivers: SupervisorOptions['drivers']
  store: StateStore
  logger: Logger
  backoff: RestartBackoff
  onChange: (report: TInstanceReport) => void
  onLogs?: SupervisorOptions['onLogs']
  onForget: (w: Worker) => void
  volumes?: InstanceVolumes
  startContext?: SupervisorOptions['startContext']
}

const driverMissing = (d: DriverName) => `the ${d} driver is not available on this node`

export class Worker {
  // --- target: what the server last asked for
  private desired: TDesiredInstance | null = null
  private hash: string
  private generation: number
  private target: KnownInstance['target'] = null

  // --- the process or container, if one runs
  private proc: InstanceHandle | null = null
  private procHash: string | null = null
  private procGraceSeconds = 10
  private procStartedMs = 0
  private stoppingProc: InstanceHandle | null = null
  /** Why the agent stopped the running process itself (liveness), for the exit message. */
  private killReason: string | null = null
  /** Driver of the last run: the one that cleans up after it. */
  private runDriver: DriverName = 'process'

  // --- output
  private readonly output: InstanceOutput
  private persistedCursor = ''
  /** Overrides the reason derived from the target (agent shutdown). */
  private stopReason: string | null = null
  /** The most a stop may wait for the process to exit (an agent that stops everything on exit). */
  private graceCapSeconds = Number.POSITIVE_INFINITY

  // --- observed
  private state: TObservedState = 'pending'
  private pid: number | null = null
  private restarts = 0
  private startedAt: string | null = null
  private exitCode: number | null = null
  private message: string | null = null
  /** How the previous run ended: kept while it restarts and runs again, replaced by the next end. */
  private lastExit: TLastExit | null = null
  private runGeneration: number

  // --- restart policy: an exit the policy has not acted on yet
  private pendingExit: { hash: string; exitCode: number | null; permanent: boolean } | null = null
  private failStreak = 0
  private restartTimer: NodeJS.Timeout | null = null
  private restartDue = false

  // --- fencing: what the watchdog of the current run watches; a start waits for stale copies to stop
  private fence: PersistedInstance['fence'] = null
  private startGate: Promise<unknown> | null = null

  // --- the convergence loop
  private looping = false
  private dirty = false
  private idleWaiters: Array<() => void> = []
  private disposed = false
  private readonly log: Logger

  constructor(
    readonly instanceId: string,
    private readonly deps: WorkerDeps,
    init: { hash: string; generation: number },
  ) {
    this.hash = init.hash
    this.generation = init.generation
    this.runGeneration = init.generation
    this.log = deps.logger.child({ instanceId })
    // Shipped by the closing agent after dispose(): the file must say so, or the next agent sends them again.
    this.output = new InstanceOutput(instanceId, deps.onLogs, this.log, () => this.persist())
  }

  known(): KnownInstance {
    return { instanceId: this.instanceId, specHash: this.hash, generation: this.generation, target: this.target }
  }

  report(): TInstanceReport {
    return {
      instanceId: this.instanceId,
      state: this.state,
      pid: this.pid,
      restarts: this.restarts,
      startedAt: this.startedAt,
      exitCode: this.exitCode,
      message: truncate(this.message),
      ...(this.lastExit && { lastExit: this.lastExit }),
      generation: this.runGeneration,
    }
  }

  get processGroup(): number | null {
    return this.proc?.processGroup ?? null
  }

  /** The running handle, unless it is being stopped. */
  get handle(): InstanceHandle | null {
    return this.proc && this.stoppingProc !== this.proc && this.state === 'running' ? this.proc : null
  }

  /**
   * Restores what a previous agent persisted; a live process with the same start time (or the
   * same container, still running) is adopted.
   */
  async restore(rec: PersistedInstance, driver: RuntimeDriver | undefined): Promise<void> {
    this.restarts = rec.restarts
    this.startedAt = rec.startedAt
    this.exitCode = rec.exitCode
    this.message = rec.message
    this.lastExit = rec.lastExit
    this.runDriver = rec.driver
    this.output.cursor = rec.logCursor
    const wasRunning = rec.pid !== null || rec.containerId !== null || rec.state === 'running'
    let proc: InstanceHandle | null = null
    if (wasRunning && driver) {
      try {
        proc = await driver.adopt(rec)
      } catch (err) {
        this.log.warn({ err }, 'cannot re-adopt the instance')
      }
    }
    if (this.disposed) {
      proc?.detach()
      return
    }
    if (proc) {
      this.fence = rec.fence
      this.attach(proc, rec.specHash, rec.stopGraceSeconds, Date.parse(rec.startedAt ?? '') || Date.now(), rec.logCursor)
      this.state = 'running'
      this.pid = proc.pid
      this.message = null
      this.log.info({ pid: proc.pid, driver: proc.driver, id: proc.id }, 'adopted running instance')
      // Records found by label (no state file) are written now.
      this.persist()
      await this.deps.volumes?.adopted(this.instanceId, proc, rec.fence).catch((err) => this.log.warn({ err }, 'cannot start the watchdog'))
    } else if (wasRunning) {
      this.state = 'exited'
      this.exitCode = null
      this.message = !driver
        ? `${driverMissing(rec.driver)}: cannot check on the ${rec.driver === 'docker' ? 'container' : 'process'}`
        : rec.driver === 'docker'
          ? 'the container exited while no agent was watching it'
          : 'the process exited while no agent was watching it'
      this.pendingExit = { hash: rec.specHash, exitCode: null, permanent: false }
      this.lastExit = ended('lost', { exitCode: null, signal: null }, this.message)
      this.log.warn({ pid: rec.pid, containerId: rec.containerId }, `instance is gone: ${this.message}`)
      this.persist()
    } else {
      this.state = rec.state
      if (rec.state === 'exited' || rec.state === 'failed') {
        this.pendingExit = { hash: rec.specHash, exitCode: rec.exitCode, permanent: false }
      }
    }
  }

  apply(a: Action): void {
    if (a.type === 'remove') {
      this.target = 'removed'
    } else {
      this.desired = a.desired
      this.hash = a.specHash
      this.generation = a.desired.generation
      this.target = a.type === 'stop' ? 'stopped' : 'running'
      if (a.type === 'leave' && this.runGeneration !== a.desired.generation && this.procHash === a.specHash) {
        // Same spec, new generation: the process keeps running, only the bookkeeping moves on.
        this.runGeneration = a.desired.generation
        this.persist()
        this.emit()
      }
    }
    this.kick()
  }

  /** Stops the instance now, before anything else happens (it holds a stale fence). */
  async fenceOff(reason: string): Promise<void> {
    if (!this.proc) return
    this.target = 'stopped'
    this.stopReason = reason
    await this.stopProcess(reason)
    this.stopReason = null
  }

  /** Holds starts until `gate` settles (stale copies of other instances stopping first). */
  holdStart(gate: Promise<unknown>): void {
    this.startGate = gate
  }

  /** Something a waiting start depended on changed (the lease was renewed): look again. */
  poke(): void {
    if (!this.proc && this.target === 'running') this.kick()
  }

  /** What the watchdog of the running instance watches; null when nothing runs or it needs no fencing. */
  get fenceRecord(): PersistedInstance['fence'] {
    return this.proc ? this.fence : null
  }

  /** Nothing runs and nothing will until a new desired state says so: its volumes hold their last write. */
  get stoppedForGood(): boolean {
    return !this.proc && (this.target === 'stopped' || this.target === 'removed')
  }

  /** Volumes this instance mounts while it runs or is about to. */
  get mountedVolumeIds(): string[] {
    return this.proc || this.target === 'running' ? (this.desired?.mounts.map((m) => m.volumeId) ?? []) : []
  }

  /** For a stopping agent: stop the process (within `graceCapSeconds`) but keep the state file, unlike removal. */
  shutdown(graceCapSeconds = Number.POSITIVE_INFINITY): Promise<void> {
    if (this.target !== 'removed') this.target = 'stopped'
    this.stopReason = 'the agent is shutting down'
    this.graceCapSeconds = graceCapSeconds
    this.kick()
    return this.whenIdle()
  }

  get busy(): boolean {
    return this.looping
  }

  whenIdle(): Promise<void> {
    if (!this.looping) return Promise.resolve()
    return new Promise((r) => this.idleWaiters.push(r))
  }

  dispose(): void {
    if (this.disposed) return
    this.disposed = true
    this.cancelRestart()
    // What it read but did not ship yet is read again by the next agent.
    this.output.abort()
    this.proc?.detach()
    // The next agent resumes the output where this one stopped shipping (moved on by batches shipped from now on).
    if (this.proc) this.persist()
  }

  /** Persists the state when only the log cursor moved. */
  checkpoint(): void {
    if (this.disposed || !this.proc) return
    if (JSON.stringify(this.output.cursor) !== this.persistedCursor) this.persist()
  }

  private kick(): void {
    if (this.disposed) return
    if (this.looping) {
      this.dirty = true
      return
    }
    void this.loop()
  }

  private async loop(): Promise<void> {
    this.looping = true
    try {
      for (;;) {
        this.dirty = false
        const progressed = await this.step()
        if (this.disposed || (!progressed && !this.dirty)) break
      }
    } catch (err) {
      this.log.error({ err }, 'instance worker failed')
    } finally {
      this.looping = false
      for (const r of this.idleWaiters.splice(0)) r()
    }
  }

  /** One move towards the target; true when something changed and the target must be re-checked. */
  private async step(): Promise<boolean> {
    const t = this.target
    if (this.proc) {
      if (t === null) return false // adopted, waiting for the first desired state
      if (t === 'running' && this.procHash === this.hash) return false
      const reason = this.stopReason ?? (t === 'running' ? 'spec changed' : t === 'removed' ? 'no longer desired on this node' : 'desired state is stopped')
      await this.stopProcess(reason)
      return true
    }
    if (t === null) return false
    if (t === 'stopped' || t === 'removed') {
      this.cancelRestart()
      this.pendingExit = null
      if (this.state !== 'stopped') {
        // An exited container is still there: it goes with the instance.
        await this.deps.drivers[this.runDriver]?.release(this.instanceId).catch((err) => this.log.warn({ err }, 'cleanup failed'))
        this.set('stopped', { pid: null, message: this.stopReason ?? (t === 'removed' ? 'no longer desired on this node' : 'desired state is stopped') })
        this.persist()
      }
      if (t === 'removed') {
        await this.deps.store.remove(this.instanceId)
        if (this.target === 'removed') this.deps.onForget(this)
      }
      return false
    }
    const desired = this.desired
    if (!desired) return false
    if (this.pendingExit && this.pendingExit.hash === this.hash) {
      if (!wantsRestart(desired.spec.restartPolicy, this.pendingExit)) return false
      if (!this.restartDue) {
        if (!this.restartTimer) this.scheduleRestart()
        return false
      }
      this.restartDue = false
      this.restarts += 1
    }
    this.pendingExit = null
    return this.startProcess(desired)
  }

  private scheduleRestart(): void {
    const delay = restartDelay(this.deps.backoff, this.failStreak)
    this.failStreak += 1
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null
      this.restartDue = true
      this.kick()
    }, delay)
    this.log.info({ delayMs: delay, restarts: this.restarts }, 'restart scheduled')
    this.set(this.state, { message: `${this.message ?? this.state}; restarting in ${(delay / 1000).toFixed(1)}s` })
  }

  private cancelRestart(): void {
    if (this.restartTimer) clearTimeout(this.restartTimer)
    this.restartTimer = null
    this.restartDue = false
  }

  /** Starts the instance; false when it may not start yet (it waits for the lease). */
  private async startProcess(desired: TDesiredInstance): Promise<boolean> {
    this.cancelRestart()
    const hash = this.hash
    if (this.startGate) {
      await this.startGate
      this.startGate = null
      if (this.target !== 'running' || this.hash !== hash) return true
    }
    this.set('starting', { pid: null, exitCode: null, message: null })
    // The previous run's last lines are read before the next run writes any.
    await this.output.whenDrained()
    const driver = this.deps.drivers[desired.spec.driver]
    this.runDriver = desired.spec.driver
    let proc: InstanceHandle
    try {
      if (!driver) throw new SpawnError(driverMissing(desired.spec.driver), true)
      const prepared = this.deps.volumes ? await this.deps.volumes.prepare(desired) : { ok: true as const, mounts: [], fence: null }
      if (!prepared.ok && 'wait' in prepared) {
        this.set('pending', { message: prepared.wait })
        return false
      }
      if (!prepared.ok) throw new SpawnError(prepared.refuse, true)
      this.fence = prepared.fence
      const ctx = { ...((await this.deps.startContext?.(desired)) ?? {}), mounts: prepared.mounts }
      proc = await driver.start(
        desired,
        {
          onPulling: (image) => {
            this.log.info({ image }, 'pulling image')
            this.set('pulling', { message: `pulling image "${image}"` })
          },
          onPulled: () => this.set('starting', { message: null }),
        },
        ctx,
      )
    } catch (err) {
      const message = err instanceof SpawnError ? err.message : `cannot start: ${(err as Error).message}`
      // Retrying cannot fix a spec this node can never run; a missing binary may appear later, though.
      const permanent = err instanceof SpawnError && err.permanent
      this.pendingExit = { hash, exitCode: null, permanent }
      this.set('failed', { pid: null, exitCode: null, message })
      this.log.warn({ command: desired.spec.command, image: desired.spec.image }, `start failed: ${message}`)
      this.persist()
      return true
    }
    // The watchdog starts while the start is reported (a move's downtime waits for the report).
    const watching = this.deps.volumes?.started(this.instanceId, proc, this.fence).catch((err) => this.log.error({ err }, 'cannot start the watchdog'))
    this.attach(proc, hash, desired.spec.stopGraceSeconds, Date.now(), null)
    this.runGeneration = desired.generation
    this.startedAt = new Date().toISOString()
    this.set('running', { pid: proc.pid, exitCode: null, message: null })
    this.log.info({ pid: proc.pid, id: proc.id, driver: proc.driver, app: desired.appName, restarts: this.restarts }, 'instance started')
    // Even if the agent detached meanwhile: an unrecorded process could never be re-adopted.
    this.persist()
    await watching
    if (this.disposed) proc.detach()
    return true
  }

  private attach(proc: InstanceHandle, hash: string, graceSeconds: number, startedMs: number, cursor: LogCursor | null): void {
    this.proc = proc
    this.procHash = hash
    this.procGraceSeconds = graceSeconds
    this.procStartedMs = startedMs
    this.runDriver = proc.driver
    this.output.follow(proc, cursor)
    void proc.exited.then((info) => this.onExit(proc, info))
  }

  /**
   * A failed liveness check: the process is stopped like a crash, and the restart policy
   * brings it back (counted as a restart, with the reason in the message).
   */
  kill(reason: string): void {
    const proc = this.proc
    if (!proc || this.stoppingProc === proc || this.disposed) return
    this.killReason = reason
    this.log.warn({ pid: proc.pid }, `stopping a hung instance: ${reason}`)
    void proc.stop(this.procGraceSeconds)
  }

  private onExit(proc: InstanceHandle, info: ExitInfo): void {
    if (this.disposed || this.proc !== proc || this.stoppingProc === proc) return
    void this.output.drain()
    this.proc = null
    if (Date.now() - this.procStartedMs >= this.deps.backoff.resetAfterMs) this.failStreak = 0
    this.pendingExit = { hash: this.procHash ?? this.hash, exitCode: info.exitCode, permanent: false }
    const message = this.killReason ? `${this.killReason}; ${info.message}` : info.message
    this.lastExit = ended(info.oomKilled ? 'oomKilled' : this.killReason ? 'unhealthy' : info.signal ? 'signaled' : 'exited', info, message)
    this.killReason = null
    this.set('exited', { pid: null, exitCode: info.exitCode, message })
    this.log.warn({ exitCode: info.exitCode, signal: info.signal }, `instance ${info.message}`)
    this.persist()
    this.kick()
    // Killed by its watchdog: say so.
    void this.deps.volumes?.fencedReason(this.instanceId).then((why) => {
      if (!why || this.state !== 'exited' || this.proc) return
      const message = `${info.message}: stopped by its watchdog, ${why}`
      if (this.lastExit) this.lastExit = { ...this.lastExit, message: truncate(message) ?? '' }
      this.set('exited', { message })
    })
  }

  private async stopProcess(reason: string): Promise<void> {
    const proc = this.proc
    if (!proc) return
    this.stoppingProc = proc
    this.cancelRestart()
    this.set('stopping', { message: reason })
    const graceSeconds = Math.min(this.procGraceSeconds, this.graceCapSeconds)
    this.log.info({ pid: proc.pid, graceSeconds }, `stopping: ${reason}`)
    const info = await proc.stop(graceSeconds)
    this.stoppingProc = null
    this.proc = null
    this.pendingExit = null
    const message = `stopped (${reason}); ${info.message}`
    this.lastExit = ended(info.oomKilled ? 'oomKilled' : 'stopped', info, message)
    // Reported as soon as it is gone (a move's downtime waits for this); then the watchdog goes and the last output is read.
    this.set('stopped', { pid: null, exitCode: info.exitCode, message })
    this.log.info({ exitCode: info.exitCode }, `instance stopped: ${info.message}`)
    await this.deps.volumes?.stopped(this.instanceId).catch((err) => this.log.warn({ err }, 'cannot stop the watchdog'))
    await this.output.drain()
    this.persist()
  }

  private set(state: TObservedState, patch: { pid?: number | null; exitCode?: number | null; message?: string | null }): void {
    this.state = state
    if (patch.pid !== undefined) this.pid = patch.pid
    if (patch.exitCode !== undefined) this.exitCode = patch.exitCode
    if (patch.message !== undefined) this.message = patch.message
    this.emit()
  }

  private emit(): void {
    if (!this.disposed) this.deps.onChange(this.report())
  }

  private persist(): void {
    // Written even after dispose(): the file must match reality for the next agent. Only a removed instance has none.
    if (this.target === 'removed' && !this.proc) return
    const running = this.proc !== null
    const cursor = this.output.cursor
    this.persistedCursor = JSON.stringify(cursor)
    void this.deps.store.save({
      instanceId: this.instanceId,
      driver: this.proc?.driver ?? this.runDriver,
      pid: this.proc?.pid ?? null,
      containerId: this.proc?.driver === 'docker' ? this.proc.id : null,
      processStartTime: this.proc?.startTime ?? null,
      specHash: running ? (this.procHash ?? this.hash) : this.hash,
      generation: this.runGeneration,
      startedAt: this.startedAt,
      restarts: this.restarts,
      state: running ? 'running' : this.state === 'exited' || this.state === 'failed' ? this.state : 'stopped',
      exitCode: this.exitCode,
      message: truncate(this.message),
      lastExit: this.lastExit,
      stopGraceSeconds: running ? this.procGraceSeconds : (this.desired?.spec.stopGraceSeconds ?? this.procGraceSeconds),
      logCursor: cursor,
      fence: running ? this.fence : null,
    })
  }
}
