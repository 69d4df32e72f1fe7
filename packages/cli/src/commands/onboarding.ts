import type { TTenant } from '@alveary/core'
import { ZMemberRole } from '@alveary/core/schemas'
import { Option, type Command } from 'commander'
import { createClient } from '../client'
import { configPath, readConfig, writeConfig } from '../config'
import { USER_AGENT, type Ctx, type GlobalOptions } from '../context'
import { CliError, EXIT } from '../errors'
import { createOutput } from '../output'
import { readStdin } from './stdin'

const roles = ZMemberRole.options

/**
 * From nothing to a tenant with its owner, all from a shell: an operator creates a tenant and
 * invites its first owner; the owner signs up with the invitation (and is logged in); a
 * signed-in person makes API tokens for scripts and CI.
 */
export function registerOnboarding(program: Command, ctx: () => Ctx, globals: () => GlobalOptions) {
  program
    .commands.find((c) => c.name() === 'tenants')
    ?.command('create <slug>')
    .description('Operators: create a tenant')
    .requiredOption('--name <name>', 'its display name')
    .action(async (slug: string, o: { name: string }) => {
      const c = ctx()
      const t = await c.api.post<TTenant>('/tenants', { slug, name: o.name })
      c.out.result(t, () => `tenant ${t.slug} created (${t.id}); invite its first owner: alveary invite EMAIL --role owner --tenant ${t.slug}`)
    })

  program
    .command('invite <email>')
    .description('Invite someone to the tenant (signed-in people; operators: the first owner); prints the invitation token once')
    .addOption(new Option('--role <role>', 'their role').choices(roles).default('developer'))
    .action(async (email: string, o: { role: string }) => {
      const c = ctx()
      const res = await c.api.post<{ token: string; invitation: { id: string; email: string; role: string; expiresAt: string } }>(`/tenants/${await c.tenantId()}/invitations`, { email, role: o.role })
      c.out.result(res, () => `${res.token}\n(invited ${email} as ${o.role}: they run \`alveary signup --invitation ${res.token} --name NAME --password-stdin\`, or open /invite#${res.token} in the console)`)
    })

  program
    .command('signup')
    .description('Create the account an invitation was sent to (password from stdin) and log in as it')
    .requiredOption('--invitation <token>', 'the invitation token (iv_…)')
    .requiredOption('--name <name>', 'your name')
    .option('--password-stdin', 'read the new password from stdin')
    .action(async (o: { invitation: string; name: string; passwordStdin?: boolean }) => {
      const g = globals()
      const server = g.server ?? process.env['ALVEARY_SERVER'] ?? readConfig()?.server
      if (!server) throw new CliError('Pass --server URL (e.g. http://localhost:4000)', EXIT.usage)
      const password = o.passwordStdin ? await readStdin() : process.env['ALVEARY_PASSWORD']
      if (!password) throw new CliError('Give the new password on stdin with --password-stdin (or in ALVEARY_PASSWORD)', EXIT.usage)
      const res = await createClient({ server, token: null, userAgent: USER_AGENT }).request<{ tenantSlug: string }>('POST', '/invitations/sign-up', { token: o.invitation, name: o.name, password })
      const token = /alveary_session=([^;]+)/.exec(res.headers.get('set-cookie') ?? '')?.[1]
      if (!token) throw new CliError('The server made the account but sent no session: run `alveary login --email …`', EXIT.failed)
      writeConfig({ server, token, tenant: res.body.tenantSlug })
      createOutput(!!g.json).result({ server, tenant: res.body.tenantSlug, config: configPath() }, () => `Signed up and logged in to ${server}, tenant ${res.body.tenantSlug}. Saved in ${configPath()}.`)
    })

  const tokens = program.command('tokens').description('API tokens of the tenant (for scripts and CI)')
  tokens
    .command('create <name>')
    .description('Create one (signed-in people only); prints the secret once')
    .addOption(new Option('--role <role>', 'what it may do').choices(roles).default('developer'))
    .option('--ttl-days <days>', 'expires after this many days', '90')
    .action(async (name: string, o: { role: string; ttlDays: string }) => {
      const c = ctx()
      const ttlDays = Number(o.ttlDays)
      if (!Number.isInteger(ttlDays) || ttlDays < 1 || ttlDays > 3650) throw new CliError('--ttl-days: a whole number of days from 1 to 3650', EXIT.usage)
      const res = await c.api.post<{ token: string; apiToken: { id: string } }>(`/tenants/${await c.tenantId()}/tokens`, { name, role: o.role, ttlDays })
      c.out.result(res, () => res.token)
    })
}
