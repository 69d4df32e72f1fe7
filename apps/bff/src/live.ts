import { on } from 'node:events'
import { EventEmitter } from 'node:events'
import type { ChangeBus, TChange } from '@alveary/core'

/** What a live subscription yields: a change, or `hello` first (and after every reconnect). */
export type TLiveHint = TChange | { kind: 'hello' }

/**
 * Change hints for one subscriber, as an async iterable. Subscribes before the caller
 * reads anything, so nothing that happens after the subscription starts is missed.
 */
export async function* changesOf(bus: ChangeBus, match: (c: TChange) => boolean, signal: AbortSignal | undefined): AsyncGenerator<TLiveHint> {
  const emitter = new EventEmitter()
  const unsubscribe = bus.subscribe((c) => {
    // After the bus was down, every view may be stale: consoles refetch what they show.
    if (c.kind === 'resync' || match(c)) emitter.emit('change', c)
  })
  try {
    yield { kind: 'hello' }
    for await (const [change] of on(emitter, 'change', { signal })) yield change as TChange
  } catch (err) {
    if ((err as Error).name !== 'AbortError') throw err
  } finally {
    unsubscribe()
  }
}
