/**
 * Every request to the engine has a deadline: an engine that accepts the connection and never
 * answers (a hung dockerd, a Podman service stuck on storage) must not hang the agent with an
 * instance in `starting` forever. The request is aborted and the caller gets a clear error.
 * Long polls that may rightly last forever (/wait, a followed log stream) get a deadline for
 * the answer's headers only; the periodic inspect that backs them up has its own.
 */
export class EngineTimeout extends Error {
  constructor(what: string, ms: number) {
    super(`the container engine did not answer ${what} within ${ms / 1000} s`)
    this.name = 'EngineTimeout'
  }
}

export interface EngineCall {
  <T>(what: string, fn: (abortSignal: AbortSignal) => Promise<T>, timeoutMs?: number): Promise<T>
  /** The deadline of a call that names none. */
  readonly timeoutMs: number
}

export function engineCalls(defaultTimeoutMs: number): EngineCall {
  const call = async <T>(what: string, fn: (abortSignal: AbortSignal) => Promise<T>, timeoutMs = defaultTimeoutMs): Promise<T> => {
    const ac = new AbortController()
    let timer: NodeJS.Timeout | undefined
    // Some calls ignore the signal (an image inspect): the race answers the caller anyway.
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(new EngineTimeout(what, timeoutMs))
        ac.abort()
      }, timeoutMs)
    })
    try {
      return await Promise.race([fn(ac.signal), expired])
    } finally {
      clearTimeout(timer)
    }
  }
  return Object.assign(call, { timeoutMs: defaultTimeoutMs })
}
