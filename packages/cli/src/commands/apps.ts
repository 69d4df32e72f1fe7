import type { TAppDetail, TAppSummary, TRevision } from '@alveary/core'
import { minReadySecondsOf, ZCreateAppInput, ZReplicas } from '@alveary/core/schemas'
import type { Command } from 'commander'
import { z } from 'zod'
import { resolveApp, waitUntil, type Ctx } from '../context'
import { CliError, EXIT } from '../errors'
import { readSpecFile } from '../files'
import { table } from '../output'

type WithCtx = () => Ctx
const appPath = (r: { tenantId: string; appId: string }) => `/tenants/${r.tenantId}/apps/${r.appId}`

/** Waits until every replica of the current revision runs and no rollout is in progress. */
export function waitForApp(ctx: Ctx, r: { tenantId: string; appId: string }, timeoutSeconds: number) {
  return waitUntil(ctx, 'rollout', timeoutSeconds, async () => {
    const app = await ctx.api.get<TAppDetail>(appPath(r))
    const current = app.instances.filter((i) => i.revision === app.revision && i.desiredState === 'running')
    // As a rollout counts them: running, not unready, for the app's minimum ready time (3 s without a readiness check).
    const minReadyMs = minReadySecondsOf(app.spec) * 1000
    const counts = (i: TAppDetail['instances'][number]) => i.state === 'running' && i.ready !== false && (minReadyMs === 0 || (i.startedAt !== null && Date.now() - new Date(i.startedAt).getTime() >= minReadyMs))
    const running = current.filter(counts).length
    const rolling = app.rollout?.state === 'progressing'
    if (app.rollout && ['failed', 'rolled_back'].includes(app.rollout.state) && app.rollout.toRevision === app.revision) {
      throw new CliError(`rollout ${app.rollout.state}: ${app.rollout.message ?? ''}`, EXIT.failed)
    }
    const why = notRunningWhy(current.filter((i) => !counts(i)))
    return { done: !rolling && running === app.replicas && app.instances.length === app.replicas, progress: `${running}/${app.replicas} running${rolling ? `, rollout ${app.rollout!.step}` : ''}${why ? ` · ${why}` : ''}`, value: app }
  })
}

/** What the first replica that does not count yet says about it (or how its last run ended): a wait that stalls shows why. */
function notRunningWhy(instances: TAppDetail['instances']): string | null {
  for (const i of instances) {
    const why = i.pendingReason ?? i.message ?? i.healthMessage ?? (i.lastExit && `last exit: ${i.lastExit.reason}${i.lastExit.exitCode === null ? '' : ` (${i.lastExit.exitCode})`}`)
    if (why) return `#${i.ordinal} ${i.state}: ${why}${i.restarts ? ` (${i.restarts} restart${i.restarts === 1 ? '' : 's'})` : ''}`
  }
  return null
}

export function appTable(apps: TAppSummary[]): string {
  return table(
    ['NAME', 'REPLICAS', 'RUNNING', 'DRIVER', 'COMMAND/IMAGE', 'NETWORK', 'ID'],
    apps.map((a) => [a.name, a.replicas, a.running, a.driver, a.image ?? a.command, a.network?.name ?? 'host', a.id]),
  )
}

/** "oomKilled (137) 2026-12-03T17:30:00.000Z": how the previous run ended (the message is in --json). */
const lastExitCell = ({ lastExit: e }: TAppDetail['instances'][number]) => e && `${e.reason}${e.exitCode === null ? '' : ` (${e.exitCode})`} ${new Date(e.at).toISOString()}`

export function instanceTable(app: TAppDetail): string {
  return table(
    ['INSTANCE', '#', 'STATE', 'READY', 'NODE', 'IP', 'URL', 'REV', 'RESTARTS', 'MESSAGE', 'LAST EXIT'],
    app.instances.map((i) => [i.id, i.ordinal, i.state, i.ready === null ? '' : i.ready ? 'yes' : 'no', i.node?.name, i.ip, i.url, i.revision, i.restarts, i.pendingReason ?? i.message ?? i.healthMessage, lastExitCell(i)]),
  )
}

export function registerApps(program: Command, ctx: WithCtx) {
  const apps = program.command('apps').description('Apps of the tenant: list, deploy, update, scale, roll back, delete')
  const wait = (c: Command) => c.option('--wait', 'wait until every replica runs (progress on stderr)').option('--timeout <seconds>', 'give up waiting after this long (exit code 9)', '300')

  apps
    .command('list')
    .alias('ls')
    .description('List apps')
    .action(async () => {
      const c = ctx()
      const list = await c.api.get<TAppSummary[]>(`/tenants/${await c.tenantId()}/apps`)
      c.out.result(list, () => (list.length ? appTable(list) : 'No apps.'))
    })

  apps
    .command('get <app>')
    .description('An app: spec, revision, rollout and instances')
    .action(async (ref: string) => {
      const c = ctx()
      const app = await c.api.get<TAppDetail>(appPath(await resolveApp(c, ref)))
      c.out.result(app, () => `${appTable([app])}\nrevision ${app.revision}${app.rollout ? `, rollout ${app.rollout.state} (${app.rollout.step})` : ''}\n\n${instanceTable(app)}`)
    })

  wait(apps.command('deploy').description('Deploy a new app from a file (YAML or JSON: name, replicas, spec, network)').requiredOption('-f, --file <file>', 'the app file, - for stdin')).action(
    async (o: { file: string; wait?: boolean; timeout: string }) => {
      const c = ctx()
      const input = readSpecFile(o.file, ZCreateAppInput)
      const tenantId = await c.tenantId()
      const app = await c.api.post<TAppSummary>(`/tenants/${tenantId}/apps`, input)
      c.out.note(`app ${app.name} created (${app.replicas} replica${app.replicas === 1 ? '' : 's'})`)
      const result = o.wait ? await waitForApp(c, { tenantId, appId: app.id }, Number(o.timeout)) : app
      c.out.result(result, () => (o.wait ? instanceTable(result as TAppDetail) : appTable([app])))
    },
  )

  wait(
    apps
      .command('update <app>')
      .description('New revision: the spec from a file and/or environment changes; rolled out when what instances run changed')
      .option('-f, --file <file>', 'an app file (its spec is used) or a bare spec')
      .option('-e, --env <KEY=VALUE...>', 'set environment variables (KEY= removes one)'),
  ).action(async (ref: string, o: { file?: string; env?: string[]; wait?: boolean; timeout: string }) => {
    const c = ctx()
    const r = await resolveApp(c, ref)
    // Read, change, write back with If-Match: a change made meanwhile by someone else is not overwritten (exit code 5).
    const res = await c.api.request<TAppDetail>('GET', appPath(r))
    let spec: Record<string, unknown> = { ...res.body.spec }
    if (o.file) {
      const doc = readSpecFile(o.file, z.union([ZCreateAppInput, ZCreateAppInput.shape.spec.transform((spec) => ({ spec }))]))
      spec = doc.spec
    }
    for (const kv of o.env ?? []) {
      const eq = kv.indexOf('=')
      if (eq < 1) throw new CliError(`--env ${kv}: expected KEY=VALUE`, EXIT.usage)
      const env = { ...(spec['env'] as Record<string, string>) }
      if (eq === kv.length - 1) delete env[kv.slice(0, eq)]
      else env[kv.slice(0, eq)] = kv.slice(eq + 1)
      spec = { ...spec, env }
    }
    if (!o.file && !o.env?.length) throw new CliError('Nothing to change: pass -f FILE and/or --env KEY=VALUE', EXIT.usage)
    // The server's spec names no image for process apps (null); the input schema wants it absent.
    const clean = Object.fromEntries(Object.entries(spec).filter(([, v]) => v !== null))
    const app = await c.api.patch<TAppSummary>(appPath(r), { spec: clean }, { 'if-match': res.headers.get('etag') ?? '*' })
    c.out.note(`app ${app.name} updated`)
    const result = o.wait ? await waitForApp(c, r, Number(o.timeout)) : app
    c.out.result(result, () => (o.wait ? instanceTable(result as TAppDetail) : appTable([app])))
  })

  wait(apps.command('scale <app> <replicas>').description('Change the number of replicas')).action(async (ref: string, n: string, o: { wait?: boolean; timeout: string }) => {
    const c = ctx()
    const replicas = ZReplicas.safeParse(Number(n))
    if (!replicas.success) throw new CliError(`replicas: ${replicas.error.issues[0]!.message}`, EXIT.usage)
    const r = await resolveApp(c, ref)
    const app = await c.api.post<TAppSummary>(`${appPath(r)}/scale`, { replicas: replicas.data })
    c.out.note(`app ${app.name} scaled to ${app.replicas}`)
    const result = o.wait ? await waitForApp(c, r, Number(o.timeout)) : app
    c.out.result(result, () => (o.wait ? instanceTable(result as TAppDetail) : appTable([app])))
  })

  wait(apps.command('rollback <app>').description('Roll back to an earlier revision (default: the one before the current)').option('--to <revision>', 'the revision to return to')).action(
    async (ref: string, o: { to?: string; wait?: boolean; timeout: string }) => {
      const c = ctx()
      const r = await resolveApp(c, ref)
      let to = o.to ? Number(o.to) : null
      if (to === null) {
        const revisions = await c.api.get<TRevision[]>(`${appPath(r)}/revisions`)
        const current = revisions.find((x) => x.current)?.revision ?? 0
        to = revisions.filter((x) => x.revision < current).sort((a, b) => b.revision - a.revision)[0]?.revision ?? null
        if (to === null) throw new CliError('No earlier revision to roll back to', EXIT.conflict)
      }
      const app = await c.api.post<TAppSummary>(`${appPath(r)}/rollback`, { revision: to })
      c.out.note(`app ${app.name} rolling back to revision ${to}`)
      const result = o.wait ? await waitForApp(c, r, Number(o.timeout)) : app
      c.out.result(result, () => (o.wait ? instanceTable(result as TAppDetail) : appTable([app])))
    },
  )

  apps
    .command('revisions <app>')
    .description('Revision history with what changed')
    .action(async (ref: string) => {
      const c = ctx()
      const list = await c.api.get<TRevision[]>(`${appPath(await resolveApp(c, ref))}/revisions`)
      c.out.result(list, () => table(['REV', 'CURRENT', 'CAUSE', 'BY', 'CHANGES'], list.map((x) => [x.revision, x.current ? '*' : '', x.cause, x.createdBy, x.changes.map((ch) => `${ch.field}: ${ch.from ?? '-'} → ${ch.to ?? '-'}`).join('; ')])))
    })

  apps
    .command('delete <app>')
    .alias('rm')
    .description('Delete an app (its instances drain and stop)')
    .option('--wait', 'wait until it is gone')
    .option('--timeout <seconds>', 'give up waiting after this long', '300')
    .action(async (ref: string, o: { wait?: boolean; timeout: string }) => {
      const c = ctx()
      const r = await resolveApp(c, ref)
      await c.api.delete(appPath(r))
      c.out.note(`app ${ref} deleting`)
      if (o.wait)
        await waitUntil(c, 'deletion', Number(o.timeout), async () => {
          const left = (await c.api.get<TAppSummary[]>(`/tenants/${r.tenantId}/apps`)).find((a) => a.id === r.appId)
          return { done: !left, progress: left ? `${left.running} still running` : 'gone', value: null }
        })
      c.out.result({ deleted: r.appId }, () => `app ${ref} ${o.wait ? 'deleted' : 'deleting'}`)
    })

  program
    .command('instances <app>')
    .description('Instances of an app: state, node, address, restarts')
    .action(async (ref: string) => {
      const c = ctx()
      const app = await c.api.get<TAppDetail>(appPath(await resolveApp(c, ref)))
      c.out.result(app.instances, () => instanceTable(app))
    })
}
