/**
 * Runs the system tools the overlay is built on (iproute2's `ip`/`bridge`, `nft`, `sysctl`),
 * never hand-written netlink. Every call has a timeout; a failure carries the tool's stderr.
 */
import { execFile } from 'node:child_process'

export class ToolError extends Error {
  override name = 'ToolError'
  constructor(
    readonly command: string,
    readonly stderr: string,
    readonly exitCode: number | null,
  ) {
    super(`${command}: ${stderr.trim().split('\n').slice(-3).join(' | ') || `exit code ${exitCode}`}`)
  }
}

export interface Tools {
  run(cmd: string, args: readonly string[], input?: string): Promise<string>
  /** Runs and parses JSON output (`ip -j`, `bridge -j`, `nft -j`); empty output is []. */
  json<T>(cmd: string, args: readonly string[]): Promise<T>
}

/**
 * `netns`: run every command inside that network namespace (tests simulate nodes as
 * namespaces and drive a node's overlay from outside it); unset: the agent's own namespace.
 */
export function createTools(opts: { netns?: string; timeoutMs?: number } = {}): Tools {
  const timeoutMs = opts.timeoutMs ?? 10_000
  function run(cmd: string, args: readonly string[], input?: string): Promise<string> {
    const [file, argv] = opts.netns ? ['nsenter', [`--net=/run/netns/${opts.netns}`, '--', cmd, ...args]] : [cmd, [...args]]
    return new Promise((resolve, reject) => {
      const child = execFile(file, argv, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
        if (err) {
          const code = typeof (err as NodeJS.ErrnoException & { code?: unknown }).code === 'number' ? ((err as unknown as { code: number }).code) : null
          reject(new ToolError(`${cmd} ${args.join(' ')}`.slice(0, 300), stderr || err.message, code))
        } else resolve(stdout)
      })
      if (input !== undefined) child.stdin?.end(input)
    })
  }
  return {
    run,
    async json<T>(cmd: string, args: readonly string[]): Promise<T> {
      const out = (await run(cmd, args)).trim()
      return (out ? JSON.parse(out) : []) as T
    },
  }
}
