/** HAProxy's runtime API over its UNIX socket: one connection per batch of commands. */
import net from 'node:net'

/** Sends commands (";"-separated in one line) and returns HAProxy's answer. */
export function runtimeApi(socketPath: string, commands: readonly string[], timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(socketPath)
    let out = ''
    const timer = setTimeout(() => sock.destroy(new Error(`no answer from ${socketPath} within ${timeoutMs}ms`)), timeoutMs)
    sock.setEncoding('utf8')
    sock.on('connect', () => sock.write(`${commands.join(';')}\n`))
    sock.on('data', (d) => (out += d))
    sock.on('end', () => {
      clearTimeout(timer)
      resolve(out)
    })
    sock.on('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
  })
}

/** Runs commands in batches; answers that are not empty or "done"-like are errors. */
export async function applyCommands(socketPath: string, commands: readonly string[], batch = 200): Promise<string[]> {
  const problems: string[] = []
  for (let i = 0; i < commands.length; i += batch) {
    const answer = await runtimeApi(socketPath, commands.slice(i, i + batch))
    for (const line of answer.split('\n')) {
      const l = line.trim()
      if (l && !/^(IP changed from|no need to change|port changed from|IP and port)/.test(l)) problems.push(l)
    }
  }
  return problems
}
