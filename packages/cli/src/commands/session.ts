import type { TAuditRecord } from '@alveary/core'
import type { Command } from 'commander'
import { createClient } from '../client'
import { configPath, readConfig, writeConfig } from '../config'
import { USER_AGENT, type Ctx, type GlobalOptions } from '../context'
import { CliError, EXIT } from '../errors'
import { createOutput, table } from '../output'
import { readStdin } from './stdin'

interface Me {
  user: { email: string; operator: boolean }
  tenants: { id: string; slug: string; role: string | null }[]
}

/** `login` (stores a token), `logout`, `whoami`, `tenants use`, `audit`. */
export function registerSession(program: Command, ctx: () => Ctx, globals: () => GlobalOptions) {
  program
    .command('login')
    .description('Store the server and a credential: an API token (--token, or ALVEARY_TOKEN), or sign in with e-mail and password (read from stdin)')
    .option('--email <email>', 'sign in as this person (operators need this: API tokens belong to one tenant)')
    .option('--password-stdin', 'read the password from stdin')
    .action(async (o: { email?: string; passwordStdin?: boolean }) => {
      const g = globals()
      const server = g.server ?? process.env['ALVEARY_SERVER'] ?? readConfig()?.server
      if (!server) throw new CliError('Pass --server URL (e.g. http://localhost:4000)', EXIT.usage)
      let token = g.token ?? process.env['ALVEARY_TOKEN'] ?? null
      if (o.email) {
        const password = o.passwordStdin ? await readStdin() : process.env['ALVEARY_PASSWORD']
        if (!password) throw new CliError('Give the password on stdin with --password-stdin (or in ALVEARY_PASSWORD)', EXIT.usage)
        const res = await createClient({ server, token: null, userAgent: USER_AGENT }).request('POST', '/auth/login', { email: o.email, password })
        token = /alveary_session=([^;]+)/.exec(res.headers.get('set-cookie') ?? '')?.[1] ?? null
        if (!token) throw new CliError('The server signed you in but sent no session', EXIT.failed)
      }
      if (!token) throw new CliError('Pass --token at_… (create one in the console: sidebar → API tokens) or --email', EXIT.usage)
      const me = await createClient({ server, token, userAgent: USER_AGENT }).get<Me>('/me')
      const tenant = g.tenant ?? (me.tenants.length === 1 ? me.tenants[0]!.slug : undefined)
      writeConfig({ server, token, ...(tenant && { tenant }) })
      createOutput(!!g.json).result({ server, email: me.user.email, operator: me.user.operator, tenant: tenant ?? null, config: configPath() }, () =>
        `Logged in to ${server} as ${me.user.email}${me.user.operator ? ' (operator)' : ''}${tenant ? `, tenant ${tenant}` : ''}. Saved in ${configPath()}.`,
      )
    })

  program
    .command('logout')
    .description('Forget the stored credential (ends the session when it is one)')
    .action(async () => {
      const saved = readConfig()
      if (saved?.token.startsWith('as_')) await createClient({ server: saved.server, token: saved.token, userAgent: USER_AGENT }).post('/auth/logout').catch(() => {})
      if (saved) writeConfig({ server: saved.server, token: '-' })
      createOutput(!!globals().json).result({ loggedOut: true }, () => 'Logged out.')
    })

  program
    .command('whoami')
    .description('Who the stored credential is, and its tenants')
    .action(async () => {
      const c = ctx()
      const me = await c.api.get<Me>('/me')
      c.out.result(me, () => `${me.user.email}${me.user.operator ? ' (operator)' : ''}\n${table(['TENANT', 'ROLE'], me.tenants.map((t) => [t.slug, t.role]))}`)
    })

  program
    .commands.find((c) => c.name() === 'tenants')
    ?.command('use <slug>')
    .description('Make a tenant the default for later commands')
    .action(async (slug: string) => {
      const saved = readConfig()
      if (!saved) throw new CliError('Log in first', EXIT.denied)
      writeConfig({ ...saved, tenant: slug })
      createOutput(!!globals().json).result({ tenant: slug }, () => `Using tenant ${slug}.`)
    })

  program
    .command('audit')
    .description('The audit trail: every change, who made it, from where, and the result (tenant owners and admins; operators: --all)')
    .option('--all', 'operators: every tenant and the platform')
    .option('--action <prefix>', 'e.g. apps. or apps.scale')
    .option('--actor <text>', 'part of the actor e-mail')
    .option('--failed', 'only refused or failed changes')
    .option('--limit <n>', 'how many, newest first', '50')
    .option('--export', 'every matching record as JSON lines on stdout')
    .action(async (o: { all?: boolean; action?: string; actor?: string; failed?: boolean; limit: string; export?: boolean }) => {
      const c = ctx()
      const q = new URLSearchParams({ ...(!o.all && { tenantId: await c.tenantId() }), ...(o.action && { action: o.action }), ...(o.actor && { actor: o.actor }), ...(o.failed && { result: 'failed' }) })
      if (o.export) {
        process.stdout.write(await c.api.text(`/audit/export?${q}`))
        return
      }
      q.set('limit', o.limit)
      const { records } = await c.api.get<{ records: TAuditRecord[] }>(`/audit?${q}`)
      c.out.result(records, () =>
        table(['WHEN', 'ACTOR', 'DOOR', 'ACTION', 'TARGET', 'RESULT', 'FROM', 'WHAT'], records.map((r) => [String(r.at), r.actorEmail ?? r.actorKind, r.door, r.action, r.target, r.result, r.sourceIp, (r.summary || r.error || '').replace(/\n/g, '; ')])),
      )
    })
}
