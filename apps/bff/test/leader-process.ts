import { spawn, type ChildProcess } from 'node:child_process'
import path from 'node:path'
import pino from 'pino'
import { startBff, type StartedBff } from '../src/bff'
import { repoRoot, ZBffEnv } from '../src/config'
import { freshDatabase, OPERATOR, waitFor } from './harness'

/** Signals a child process and resolves once it has exited (at once if it already has). */
export const killChild = (c: ChildProcess | null, signal: NodeJS.Signals = 'SIGKILL') =>
  new Promise<void>((r) => (!c || c.exitCode !== null || c.signalCode !== null ? r() : (c.once('exit', () => r()), c.kill(signal))))

/**
 * For tests of a control plane that dies: on a fresh database, the leader is a real BFF process
 * (src/main.ts) on a port of its own, which the test kills like a crash (`leader.kill()`) and starts
 * again (`leader.start()`); beside it an in-process BFF without control loops (`reader`) is the
 * test's API and never leads. `stop()` removes all of it.
 */
export async function startLeaderAndReader(settings: Record<string, string>) {
  const db = await freshDatabase()
  const port = 20_000 + Math.floor(Math.random() * 10_000)
  const env = { DATABASE_URL: db.url, BFF_HOST: '127.0.0.1', ALVEARY_OPERATOR_EMAIL: OPERATOR.email, ALVEARY_OPERATOR_PASSWORD: OPERATOR.password, ...settings }
  let child: ChildProcess | null = null
  let reader: StartedBff | undefined
  const leader = {
    port,
    start() {
      child = spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'apps/bff/src/main.ts')], {
        cwd: repoRoot,
        env: { ...process.env, ...env, BFF_PORT: String(port), LOG_LEVEL: 'error' },
        stdio: ['ignore', 'ignore', 'inherit'],
      })
      return waitFor('the BFF answers', () => fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false), 60_000, 100)
    },
    kill: () => killChild(child),
  }
  const stop = async () => {
    await leader.kill()
    await reader?.stop()
    await db.drop()
  }
  try {
    reader = await startBff(ZBffEnv.parse({ ...env, BFF_PORT: '0' }), { log: pino({ level: 'silent' }), runControlLoops: false })
    await leader.start()
  } catch (err) {
    await stop()
    throw err
  }
  return { db, reader, leader, stop }
}
