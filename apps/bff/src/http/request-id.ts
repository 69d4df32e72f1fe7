import { AsyncLocalStorage } from 'node:async_hooks'
import { randomUUID } from 'node:crypto'

const store = new AsyncLocalStorage<string>()

/**
 * Every HTTP request gets an id: sent back as `X-Request-Id`, named in generic error
 * messages and logged with the details, so a user's report leads to the log line. It is
 * kept in async context because tRPC formats errors where no request is at hand (a context
 * that failed to build, a subscription that fails while it streams).
 */
export function withRequestId<T>(fn: (id: string) => T): T {
  const id = randomUUID()
  return store.run(id, () => fn(id))
}

export const currentRequestId = (): string | null => store.getStore() ?? null
