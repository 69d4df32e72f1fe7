import net from 'node:net'

/**
 * Plain HTTP helpers for tests that go through the real server: tRPC's wire format
 * (superjson envelope), SSE subscriptions, and raw requests that no well-behaved client
 * would send.
 */
export const enc = (input: unknown) => encodeURIComponent(JSON.stringify({ json: input }))

export interface Answer {
  status: number
  headers: Headers
  body: string
}

export async function answer(res: Response): Promise<Answer> {
  return { status: res.status, headers: res.headers, body: await res.text() }
}

export function trpcGet(base: string, path: string, input: unknown, headers: Record<string, string> = {}) {
  return fetch(`${base}/trpc/${path}${input === undefined ? '' : `?input=${enc(input)}`}`, { headers }).then(answer)
}

export function trpcPost(base: string, path: string, input: unknown, headers: Record<string, string> = {}) {
  return fetch(`${base}/trpc/${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ json: input }) }).then(answer)
}

export interface SseEvent {
  event: string
  data: string
}

/**
 * Opens a subscription (tRPC over SSE) and reads its events until `done` says so, an error
 * event arrives, or `timeoutMs` passes; then closes the stream.
 */
export async function sse(url: string, headers: Record<string, string> = {}, done: (events: SseEvent[]) => boolean = () => false, timeoutMs = 3_000) {
  const ac = new AbortController()
  const timer = setTimeout(() => ac.abort(), timeoutMs)
  const events: SseEvent[] = []
  let status = 0
  let resHeaders = new Headers()
  try {
    const res = await fetch(url, { headers, signal: ac.signal })
    status = res.status
    resHeaders = res.headers
    if (!res.headers.get('content-type')?.startsWith('text/event-stream')) {
      events.push({ event: 'body', data: await res.text() })
      return { status, headers: resHeaders, events }
    }
    const decoder = new TextDecoder()
    let buf = ''
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buf += decoder.decode(chunk, { stream: true })
      let i
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i)
        buf = buf.slice(i + 2)
        const ev = { event: 'message', data: '' }
        for (const line of block.split('\n')) {
          if (line.startsWith('event:')) ev.event = line.slice(6).trim()
          else if (line.startsWith('data:')) ev.data += line.slice(5).trim()
        }
        events.push(ev)
      }
      if (events.some((e) => e.event === 'serialized-error') || done(events)) break
    }
  } catch (err) {
    if ((err as Error).name !== 'AbortError') throw err
  } finally {
    clearTimeout(timer)
    ac.abort()
  }
  return { status, headers: resHeaders, events }
}

/** The tRPC error code in an SSE error event, if any. */
export function sseErrorCode(events: SseEvent[]): string | null {
  const e = events.find((x) => x.event === 'serialized-error')
  return e ? (JSON.parse(e.data) as { json: { data: { code: string } } }).json.data.code : null
}

/** Sends raw bytes and returns what came back before the server closed (or 3 s). */
export function rawRequest(port: number, request: string | Buffer, timeoutMs = 3_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    const timer = setTimeout(() => sock.destroy(), timeoutMs)
    sock.on('connect', () => sock.end(request))
    sock.on('data', (d) => chunks.push(d))
    sock.on('error', (err) => ((err as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(err)))
    sock.on('close', () => {
      clearTimeout(timer)
      resolve(Buffer.concat(chunks).toString('latin1'))
    })
  })
}

/** What must never reach a client: stack frames, server paths, database and ORM internals. */
export const LEAK = /(\bat [\w.<>]+ \(|node:internal|node_modules|\/work\/|\/home\/|\/root\/|\/tmp\/|\.tsx?:\d+|\.m?js:\d+|prisma|invocation|PostgreSQL|SQLSTATE|duplicate key|relation "|column "|ECONNREFUSED)/i
