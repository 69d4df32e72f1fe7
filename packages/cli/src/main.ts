import { Argument, Command, CommanderError } from 'commander'
import { registerApply } from './apply/command'
import { registerApps } from './commands/apps'
import { registerFleet } from './commands/fleet'
import { registerLogs } from './commands/logs'
import { registerOnboarding } from './commands/onboarding'
import { registerResources } from './commands/resources'
import { registerSession } from './commands/session'
import { completionScript } from './completion'
import { contextFrom, type GlobalOptions } from './context'
import { CliError, EXIT } from './errors'

const program = new Command('alveary')
  .description('Alveary from a shell: apps, logs, nodes, load balancers, networks, declarative apply (the REST API /api/v1)')
  .version('0.1.0')
  .option('--server <url>', 'the API (default: from `alveary login`, or ALVEARY_SERVER)')
  .option('--token <token>', 'an API token or session (default: from `alveary login`, or ALVEARY_TOKEN)')
  .option('-t, --tenant <slug>', 'the tenant (default: from `alveary tenants use`, ALVEARY_TENANT, or your only one)')
  .option('--json', 'output JSON for scripts')
  .showHelpAfterError('(alveary --help lists the commands)')
  .exitOverride()
  .addHelpText(
    'after',
    `
Exit codes: 0 done, 1 failed, 2 usage, 3 not found, 4 not logged in or not allowed,
5 conflict (or changed since read), 6 invalid input, 7 server unreachable or failing,
8 throttled, 9 timed out waiting.`,
  )

const globals = () => program.opts<GlobalOptions>()
const ctx = () => contextFrom(globals())
// Resources first: `tenants use` (session) joins the `tenants` command it creates.
registerResources(program, ctx)
registerSession(program, ctx, globals)
registerOnboarding(program, ctx, globals)
registerApps(program, ctx)
registerLogs(program, ctx)
registerFleet(program, ctx)
registerApply(program, ctx)
program
  .command('completion')
  .description('Print a shell completion script: source <(alveary completion bash)')
  .addArgument(new Argument('[shell]', 'bash or zsh').choices(['bash', 'zsh']).default('bash'))
  .action((shell: 'bash' | 'zsh') => {
    process.stdout.write(completionScript(program, shell))
  })

try {
  await program.parseAsync()
} catch (err) {
  if (err instanceof CommanderError) {
    // --help and --version end here too, with code 0.
    process.exitCode = err.exitCode === 0 ? EXIT.ok : EXIT.usage
  } else if (err instanceof CliError) {
    if (globals().json) process.stdout.write(`${JSON.stringify({ error: err.message, exitCode: err.exitCode, details: err.details ?? null })}\n`)
    process.stderr.write(`alveary: ${err.message}\n`)
    process.exitCode = err.exitCode
  } else {
    process.stderr.write(`alveary: ${(err as Error).stack ?? String(err)}\n`)
    process.exitCode = EXIT.failed
  }
}
