import { every, type Clock } from '../clock'
import type { ChangeBus, TChange } from '../store/change-bus'
import { createWorkQueue, type Priority } from './work-queue'

/**
 * A control loop the leader runs on the shared work queue. Its keys are `name` (a
 * singleton loop such as node-lifecycle) or `name:id` (one object, such as one app).
 * Level-based: handling a key reads everything it needs, so any key may be handled at any
 * moment and any number of times; a change on the bus only makes it due sooner.
 */
export interface Controller {
  name: string
  /** Handles one key; `id` is undefined for a singleton. */
  handle(id: string | undefined): Promise<void>
  /** What a change on the bus makes due (null: nothing; a list: several keys). */
  onChange?(c: TChange): Due | Due[] | null
  /** A periodic resync: every `everyMs`, enqueue what `ids()` lists (`[undefined]` for a singleton tick). */
  periodic?: { everyMs: number; priority: Priority; ids(): Promise<(string | undefined)[]> | (string | undefined)[] }
}

type Due = { id?: string; priority: Priority }

const keyOf = (name: string, id: string | undefined) => (id === undefined ? name : `${name}:${id}`)

/**
 * Runs the controllers on one work queue: routes bus changes and periodic resyncs to keys,
 * keys back to their controller. Returns a function that stops everything and waits for
 * handlers in progress.
 */
export function runControllers(opts: {
  controllers: readonly Controller[]
  bus: ChangeBus
  clock: Clock
  workers: number
  onError(key: string, err: unknown): void
}): () => Promise<void> {
  const byName = new Map(opts.controllers.map((c) => [c.name, c]))
  if (byName.size !== opts.controllers.length) throw new Error('two controllers share a name')
  const queue = createWorkQueue({
    workers: opts.workers,
    clock: opts.clock,
    handle: async (key) => {
      const i = key.indexOf(':')
      const c = byName.get(i < 0 ? key : key.slice(0, i))
      await c?.handle(i < 0 ? undefined : key.slice(i + 1))
    },
    onError: opts.onError,
  })
  const periodic = opts.controllers.flatMap(({ name, periodic: p }) =>
    p
      ? [
          {
            everyMs: p.everyMs,
            resync: () =>
              Promise.resolve()
                .then(() => p.ids())
                .then((ids) => ids.forEach((id) => queue.add(keyOf(name, id), p.priority)))
                .catch((err) => opts.onError(name, err)),
          },
        ]
      : [],
  )
  const unsubscribe = opts.bus.subscribe((change) => {
    // Hints were lost while the bus was down: every periodic resync runs now.
    if (change.kind === 'resync') return periodic.forEach((p) => void p.resync())
    for (const c of opts.controllers) {
      const due = c.onChange?.(change)
      for (const d of Array.isArray(due) ? due : due ? [due] : []) queue.add(keyOf(c.name, d.id), d.priority)
    }
  })
  const timers = periodic.map((p) => {
    void p.resync()
    return every(opts.clock, p.everyMs, () => void p.resync())
  })
  return async () => {
    unsubscribe()
    timers.forEach((stop) => stop())
    await queue.stop()
  }
}
