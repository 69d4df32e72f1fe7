/**
 * The saga runner: drives one persisted move through its steps, and on a failure through
 * the compensations of the steps it ran, in reverse. It keeps no state of its own: every
 * call reads the move from the store, does what is due, writes down what happened and
 * returns, so a crashed or replaced leader resumes a move by calling it again.
 *
 * A step's `run` and `compensate` are idempotent and re-entrant: they answer `wait` while
 * something outside (an agent, a status report) has not happened yet, and are called
 * again later (on a change, or the controller's periodic tick).
 */
import type { Clock } from '../clock'

export type StepName =
  | 'reserve'
  | 'prepare-target'
  | 'pre-copy'
  | 'stop-source'
  | 'final-copy'
  | 'move-fence'
  | 'start-target'
  | 'wait-ready'
  | 'switch-lb'
  | 'release-source'

export type StepOutcome =
  | { kind: 'done'; detail?: string; bytes?: number }
  | { kind: 'skipped'; detail: string }
  /** Not finished: call again later. */
  | { kind: 'wait'; detail?: string; progress?: number | null }
  /** Cannot succeed: undo what was done. */
  | { kind: 'fail'; error: string }

export type UndoOutcome = { kind: 'done'; detail?: string } | { kind: 'wait'; detail?: string }

export type StepState = 'pending' | 'running' | 'done' | 'skipped' | 'failed' | 'compensating' | 'compensated'
export type MoveState = 'running' | 'compensating' | 'succeeded' | 'failed'

export interface StepRow {
  index: number
  name: string
  state: StepState
  attempts: number
  data: Record<string, unknown>
  startedAt: Date | null
}

export interface SagaMove {
  id: string
  state: MoveState
  steps: StepRow[]
}

/** What a step sees: the move, and scratch data of every step (its own to write). */
export interface StepContext<M> {
  move: M
  data: Record<string, unknown>
  /** Another step's scratch (what it reserved, started, copied). */
  dataOf(step: StepName): Record<string, unknown>
  /** Persists scratch data before the step goes on (so a resumed step finds it). */
  save(patch: Record<string, unknown>): Promise<void>
}

export interface Step<M> {
  name: StepName
  /** Longest the step may run before it counts as failed. */
  timeoutMs: number
  run(ctx: StepContext<M>): Promise<StepOutcome>
  /** Undoes what `run` did, or whatever part of it happened; called for every step that started. */
  compensate(ctx: StepContext<M>): Promise<UndoOutcome>
}

export interface SagaStore<M> {
  load(moveId: string): Promise<(SagaMove & { record: M }) | null>
  updateStep(moveId: string, index: number, patch: { state?: StepState; detail?: string | null; progress?: number | null; bytes?: number | null; attempts?: number; data?: Record<string, unknown>; error?: string | null; startedAt?: Date; finishedAt?: Date; compensatedAt?: Date }): Promise<void>
  /** `step` is the step now running, failed or being undone. */
  updateMove(moveId: string, patch: { state?: MoveState; step?: string; error?: string | null; finishedAt?: Date }): Promise<void>
}

/** Infrastructure errors (database, network) retry through the work queue; after this many a step fails. */
export const MAX_STEP_ATTEMPTS = 8

/** succeeded / failed: this call finished the move; finished: it was finished before (or is gone). */
export type AdvanceResult = 'waiting' | 'succeeded' | 'failed' | 'finished'

const undoable: ReadonlySet<StepState> = new Set(['running', 'done', 'failed', 'compensating'])

export async function advanceMove<M>(moveId: string, deps: { store: SagaStore<M>; steps: readonly Step<M>[]; clock: Clock }): Promise<AdvanceResult> {
  const { store, steps, clock } = deps
  const loaded = await store.load(moveId)
  if (!loaded || loaded.state === 'succeeded' || loaded.state === 'failed') return 'finished'
  const rows = new Map(loaded.steps.map((r) => [r.name, r]))
  const ctxFor = (row: StepRow): StepContext<M> => ({
    move: loaded.record,
    data: row.data,
    dataOf: (name) => rows.get(name)?.data ?? {},
    async save(patch) {
      Object.assign(row.data, patch)
      await store.updateStep(moveId, row.index, { data: { ...row.data } })
    },
  })

  if (loaded.state === 'running') {
    for (const step of steps) {
      const row = rows.get(step.name)
      if (!row) throw new Error(`move ${moveId} has no step ${step.name}`)
      if (row.state === 'done' || row.state === 'skipped') continue
      if (row.state === 'pending') {
        row.startedAt = clock.now()
        row.state = 'running'
        await store.updateStep(moveId, row.index, { state: 'running', startedAt: row.startedAt })
        await store.updateMove(moveId, { step: step.name })
      }
      let out: StepOutcome
      try {
        out = await step.run(ctxFor(row))
      } catch (err) {
        row.attempts += 1
        const error = (err as Error).message
        if (row.attempts < MAX_STEP_ATTEMPTS) {
          await store.updateStep(moveId, row.index, { attempts: row.attempts, error })
          throw err
        }
        out = { kind: 'fail', error: `${error} (after ${row.attempts} attempts)` }
      }
      if (out.kind === 'wait' && row.startedAt && clock.now().getTime() - row.startedAt.getTime() > step.timeoutMs) {
        out = { kind: 'fail', error: `${step.name} did not finish within ${Math.round(step.timeoutMs / 1000)}s${out.detail ? ` (${out.detail})` : ''}` }
      }
      if (out.kind === 'wait') {
        await store.updateStep(moveId, row.index, { detail: out.detail ?? null, ...(out.progress !== undefined && { progress: out.progress }) })
        return 'waiting'
      }
      if (out.kind === 'fail') {
        await store.updateStep(moveId, row.index, { state: 'failed', error: out.error, finishedAt: clock.now() })
        row.state = 'failed'
        await store.updateMove(moveId, { state: 'compensating', error: `${step.name}: ${out.error}` })
        break
      }
      row.state = out.kind
      await store.updateStep(moveId, row.index, {
        state: out.kind,
        detail: out.detail ?? null,
        finishedAt: clock.now(),
        error: null,
        ...(out.kind === 'done' && { progress: 1, ...(out.bytes !== undefined && { bytes: out.bytes }) }),
      })
    }
    if ([...rows.values()].every((r) => r.state === 'done' || r.state === 'skipped')) {
      await store.updateMove(moveId, { state: 'succeeded', finishedAt: clock.now() })
      return 'succeeded'
    }
  }

  // Compensating: undo every step that started, the last one first.
  for (const step of [...steps].reverse()) {
    const row = rows.get(step.name)!
    if (!undoable.has(row.state)) continue
    if (row.state !== 'compensating') {
      row.state = 'compensating'
      await store.updateStep(moveId, row.index, { state: 'compensating' })
      await store.updateMove(moveId, { step: step.name })
    }
    const out = await step.compensate(ctxFor(row))
    if (out.kind === 'wait') {
      await store.updateStep(moveId, row.index, { detail: out.detail ?? null })
      return 'waiting'
    }
    row.state = 'compensated'
    await store.updateStep(moveId, row.index, { state: 'compensated', compensatedAt: clock.now(), ...(out.detail && { detail: out.detail }) })
  }
  await store.updateMove(moveId, { state: 'failed', finishedAt: clock.now() })
  return 'failed'
}
