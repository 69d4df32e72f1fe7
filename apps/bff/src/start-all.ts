import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { startBff } from './bff'
import { dyingWithUs } from './dying-with-us'
import { readEnv, repoRoot } from './config'

/**
 * `npm start`: embedded PostgreSQL, the BFF, the console and one local agent with the
 * process driver, on one machine with zero set-up. Ctrl-C stops all of it.
 *
 * Run with `node --import tsx`, never under the `tsx` command: its signal relay SIGKILLs a child
 * that has not acknowledged a Ctrl-C within 30 ms (a loaded machine misses that), and this
 * script would die before its agent stopped the instances.
 */
// One command on any machine: the first tenant is trusted, so its process apps run even where the
// local agent cannot sandbox them (the agent and the summary below warn when that is the case).
const env = readEnv({ LOG_LEVEL: 'warn', ALVEARY_TRUST_FIRST_TENANT: '1', ...process.env })
const webPort = Number(process.env.WEB_PORT ?? 3000)
const agentName = (process.env.ALVEARY_NODE_NAME ?? 'local').toLowerCase()
/** `npm run dev`: the console from `next dev` (hot reload, no build) instead of the production build. */
const dev = process.argv.includes('--dev')
const children: ChildProcess[] = []
/** On Ctrl-C the local agent gives each instance this long to stop (its --exit-grace). */
const EXIT_GRACE_SECONDS = 10

function run(name: string, cmd: string, args: string[], extraEnv: Record<string, string>, cwd = repoRoot, deathSignal: 'SIGTERM' | 'SIGHUP' = 'SIGTERM') {
  // Own process group: Ctrl-C reaches only this script, which stops the children in order
  // (the agent first, so it can stop the local instances).
  // And told `deathSignal` if this script dies without stopping them (SIGKILL from a test runner):
  // the agent then stops the local instances as on Ctrl-C, and nothing keeps the ports.
  const [file, argv] = dyingWithUs(cmd, args, deathSignal)
  const child = spawn(file, argv, { cwd, env: { ...process.env, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  const prefix = (line: string) => process.stderr.write(`[${name}] ${line}\n`)
  for (const stream of [child.stdout, child.stderr])
    stream?.on('data', (d: Buffer) => d.toString().split('\n').filter(Boolean).forEach(prefix))
  child.on('error', (err) => {
    prefix(`could not run ${cmd}: ${err.message}; stopping everything`)
    void stop(1)
  })
  child.on('exit', (code, signal) => {
    if (!stopping) {
      prefix(`exited (${signal ?? code}); stopping everything`)
      void stop(1)
    }
  })
  children.push(child)
  return child
}

let stopping = false
let bff: Awaited<ReturnType<typeof startBff>> | null = null
async function stop(code = 0) {
  if (stopping) return
  stopping = true
  process.stderr.write('\nstopping… (the agent stops the local instances and removes their networks; a second Ctrl-C returns at once, the agent then finishes in the background)\n')
  // Agent first: it stops the local instances before exiting (--stop-on-exit), and removes their networks.
  await Promise.all(
    children.reverse().map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.pid === undefined || c.exitCode !== null || c.signalCode !== null) return resolve()
          // The agent's exit is bounded (instances get at most EXIT_GRACE_SECONDS, then its networks
          // and HAProxy go); killing it sooner would leave them behind.
          const t = setTimeout(() => c.kill('SIGKILL'), (EXIT_GRACE_SECONDS + 45) * 1000)
          c.once('exit', () => (clearTimeout(t), resolve()))
          c.kill('SIGTERM')
        }),
    ),
  )
  await bff?.stop().catch(() => {})
  process.stderr.write(code ? 'stopped (after an error, see above)\n' : 'stopped\n')
  process.exit(code)
}
// Children live in their own process groups: never leave them behind.
process.on('exit', () => children.forEach((c) => c.exitCode === null && c.kill('SIGTERM')))
process.once('SIGINT', () => void stop())
process.once('SIGTERM', () => void stop())

try {
  bff = await startBff(env)
  const operator = await bff.core.auth.operatorActor(env.ALVEARY_OPERATOR_EMAIL)
  const { token } = await bff.core.nodes.createJoinToken(operator, { description: `local agent (${os.hostname()})`, ttlHours: 1, uses: 1 })

  const webDir = path.join(repoRoot, 'apps/web')
  if (!dev && !existsSync(path.join(webDir, '.next/BUILD_ID'))) throw new Error('the console is not built: run `npm start` from the repository root (it builds first)')
  run('web', process.execPath, [path.join(repoRoot, 'node_modules/next/dist/bin/next'), dev ? 'dev' : 'start', '-p', String(webPort)], { BFF_URL: bff.url, NEXT_TELEMETRY_DISABLED: '1' }, webDir)
  run('agent', process.execPath, [
    path.join(repoRoot, 'packages/agents/bin/alveary-agent.mjs'),
    '--server', bff.url.replace('http', 'ws'),
    '--name', agentName,
    '--data-dir', path.join(path.resolve(repoRoot, env.ALVEARY_DATA_DIR), `agent-${agentName}`),
    '--stop-on-exit',
    '--exit-grace', String(EXIT_GRACE_SECONDS),
    // Sandboxed instances see the checkout (the sample app's files) but not the platform's data in it.
    '--sandbox-hide', path.resolve(repoRoot, env.ALVEARY_DATA_DIR),
    '--log-level', 'warn',
    // SIGHUP, not SIGTERM: the agent takes a second SIGTERM as "exit now", which would cut its cleanup short.
  // The join token goes in the environment, not the command line that `ps` shows everyone.
  ], { ALVEARY_JOIN_TOKEN: token }, repoRoot, 'SIGHUP')

  const pw = bff.operator.password
  console.log(`
  Alveary is running.

    console   http://localhost:${webPort}
    api       ${bff.url}  (health: ${bff.url}/healthz)
    operator  ${env.ALVEARY_OPERATOR_EMAIL} / ${pw ?? '(password set earlier; ALVEARY_OPERATOR_PASSWORD or the first start printed it)'}
    data      ${path.resolve(repoRoot, env.ALVEARY_DATA_DIR)}

  Deploy the sample app: command "node", args "examples/hello/server.js". Ctrl-C stops everything.
`)
  if (env.ALVEARY_TRUST_FIRST_TENANT) {
    console.log(`  Note: the first tenant you create is trusted (ALVEARY_TRUST_FIRST_TENANT): where this machine cannot
  sandbox process apps (the agent says so above), that tenant's apps run unconfined as the agent's user.
  Other tenants only run sandboxed. Admin → Tenants shows and changes who is trusted.
`)
  }
} catch (err) {
  console.error(`alveary: ${(err as Error).message}`)
  await stop(1)
}
