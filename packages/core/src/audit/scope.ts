import { AsyncLocalStorage } from 'node:async_hooks'

/**
 * The domain events (before → after, in words) a request's services wrote, collected so the
 * request's one audit row carries them as its summary. The BFF opens a scope per mutation;
 * the hot store notes every audit event written inside it.
 */
const scope = new AsyncLocalStorage<string[]>()

export async function withAuditScope<T>(fn: () => Promise<T>): Promise<{ summary: string[]; result: PromiseSettledResult<T> }> {
  const summary: string[] = []
  const result = await scope.run(summary, () => fn().then((value) => ({ status: 'fulfilled' as const, value }), (reason: unknown) => ({ status: 'rejected' as const, reason })))
  return { summary, result }
}

export function noteAuditMessage(message: string): void {
  scope.getStore()?.push(message)
}
