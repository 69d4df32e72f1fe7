/** Command line entry: flags -> config -> agent, plus signal handling. */
import { AgentStartError, createAgent } from './agent'
import { AGENT_VERSION } from './version'
import pino from 'pino'
import { cleanupNode, CleanupRefused } from './cleanup'
import { USAGE, parseConfig } from './config'

const cleanup = process.argv[2] === 'cleanup'
const parsed = parseConfig(process.argv.slice(cleanup ? 3 : 2), process.env)
if (parsed.kind === 'help') {
  process.stdout.write(USAGE)
  process.exit(0)
}
if (parsed.kind === 'version') {
  process.stdout.write(`${AGENT_VERSION}\n`)
  process.exit(0)
}
if (parsed.kind === 'error') {
  process.stderr.write(`alveary-agent: ${parsed.message.split('\n').join('\nalveary-agent: ')}\nRun alveary-agent --help for usage.\n`)
  process.exit(2)
}

const { config } = parsed
if (cleanup) {
  const log = pino({ level: config.logLevel, base: { node: config.name } }, pino.destination({ dest: 2, sync: true }))
  try {
    const { removed, kept } = await cleanupNode(config, log)
    for (const line of removed) process.stdout.write(`removed: ${line}\n`)
    for (const line of kept) process.stdout.write(`kept: ${line}\n`)
    process.exit(0)
  } catch (err) {
    if (!(err instanceof CleanupRefused)) throw err
    process.stderr.write(`alveary-agent cleanup: ${err.message}\n`)
    process.exit(2)
  }
}
const agent = createAgent(config)
void agent.exited.then(({ code }) => process.exit(code))

let signals = 0
const onSignal = (signal: NodeJS.Signals) => {
  // SIGHUP is the parent-death signal `npm start` arranges: its parent is gone (perhaps killed
  // for taking too long), so the shutdown goes on, bounded by --exit-grace, and is never cut short.
  if (signal !== 'SIGHUP') signals += 1
  if (signals > 1) {
    // A second Ctrl-C means "now": instances are left as they are.
    agent.logger.warn({ signal }, 'second signal; exiting immediately')
    process.exit(130)
  }
  agent.logger.info({ signal }, 'shutting down')
  void agent.shutdown({ stopInstances: config.stopOnExit })
}
process.on('SIGINT', onSignal)
process.on('SIGTERM', onSignal)
process.on('SIGHUP', onSignal)

try {
  await agent.start()
} catch (err) {
  if (err instanceof AgentStartError) {
    process.stderr.write(`alveary-agent: ${err.message}\n`)
    process.exit(2)
  }
  throw err
}
