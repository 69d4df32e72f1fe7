import { spawnSync } from 'node:child_process'

/**
 * A child told `signal` when this process dies, even by SIGKILL, where 'exit' handlers never
 * run (a test runner or CI step killing us): util-linux setpriv sets the parent-death signal
 * right before exec (after any change of user, which would clear it). Without setpriv (macOS)
 * the command is unchanged and only the caller's own handlers stop it.
 */
const haveSetpriv = process.platform === 'linux' && spawnSync('setpriv', ['--help'], { stdio: 'ignore' }).status === 0

export function dyingWithUs(file: string, args: string[], signal: 'SIGINT' | 'SIGTERM' | 'SIGHUP' = 'SIGTERM'): [string, string[]] {
  return haveSetpriv ? ['setpriv', ['--pdeathsig', signal, '--', file, ...args]] : [file, args]
}
