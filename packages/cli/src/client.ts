import { CliError, EXIT, exitCodeForStatus } from './errors'

export interface ApiResponse<T> {
  status: number
  headers: Headers
  body: T
}

interface ErrorBody {
  message?: string
  code?: string
  data?: { fieldErrors?: Record<string, string[]> | null; coreCode?: string | null; requestId?: string | null } | null
}

/** A thin client of the REST API (/api/v1): JSON in and out, errors as CliError with an exit code. */
export function createClient(opts: { server: string; token: string | null; userAgent: string }) {
  const base = `${opts.server.replace(/\/+$/, '')}/api/v1`
  async function request<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<ApiResponse<T>> {
    let res: Response
    try {
      res = await fetch(base + path, {
        method,
        headers: {
          'user-agent': opts.userAgent,
          ...(opts.token && { authorization: `Bearer ${opts.token}` }),
          ...(body !== undefined && { 'content-type': 'application/json' }),
          ...headers,
        },
        ...(body !== undefined && { body: JSON.stringify(body) }),
      })
    } catch (err) {
      throw new CliError(`cannot reach ${opts.server}: ${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message}`, EXIT.unreachable)
    }
    const text = await res.text()
    let parsed: unknown = null
    try {
      parsed = text ? JSON.parse(text) : null
    } catch {
      parsed = text
    }
    if (!res.ok) {
      const e = (parsed ?? {}) as ErrorBody
      const fields = Object.entries(e.data?.fieldErrors ?? {}).map(([k, v]) => `  ${k}: ${v.join('; ')}`)
      const hint = res.status === 401 ? ' (run `alveary login`)' : ''
      throw new CliError([`${e.message ?? `HTTP ${res.status}`}${hint}`, ...fields].join('\n'), exitCodeForStatus(res.status), parsed)
    }
    return { status: res.status, headers: res.headers, body: parsed as T }
  }
  return {
    server: opts.server,
    request,
    /** A GET whose answer is not JSON (the audit export's JSON lines). */
    async text(path: string): Promise<string> {
      let res: Response
      try {
        res = await fetch(base + path, { headers: { 'user-agent': opts.userAgent, ...(opts.token && { authorization: `Bearer ${opts.token}` }) } })
      } catch (err) {
        throw new CliError(`cannot reach ${opts.server}: ${(err as Error).message}`, EXIT.unreachable)
      }
      const text = await res.text()
      if (!res.ok) throw new CliError(`HTTP ${res.status}: ${text.slice(0, 500)}`, exitCodeForStatus(res.status))
      return text
    },
    get: <T>(path: string) => request<T>('GET', path).then((r) => r.body),
    post: <T>(path: string, body: unknown = {}, headers?: Record<string, string>) => request<T>('POST', path, body, headers).then((r) => r.body),
    patch: <T>(path: string, body: unknown, headers?: Record<string, string>) => request<T>('PATCH', path, body, headers).then((r) => r.body),
    put: <T>(path: string, body: unknown, headers?: Record<string, string>) => request<T>('PUT', path, body, headers).then((r) => r.body),
    delete: <T>(path: string) => request<T>('DELETE', path).then((r) => r.body),
  }
}
export type Client = ReturnType<typeof createClient>
