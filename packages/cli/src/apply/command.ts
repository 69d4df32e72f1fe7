import type { TAppDetail, TAppSummary, TNetwork } from '@alveary/core'
import type { Command } from 'commander'
import { waitForApp } from '../commands/apps'
import type { Ctx } from '../context'
import { CliError, EXIT } from '../errors'
import { readSpecFile } from '../files'
import { describePlan, planApply, ZApplyFile, type Change } from './plan'

/**
 * `alveary apply -f FILE`: converges the tenant's apps and networks to the file, like
 * `kubectl apply`. It prints the diff first; --dry-run stops there. Updates carry the ETag
 * the plan was made from (If-Match), so a change someone made meanwhile stops the apply.
 */
export function registerApply(program: Command, ctx: () => Ctx) {
  program
    .command('apply')
    .description('Make the tenant match a file of apps and networks (YAML or JSON); prints the diff first')
    .requiredOption('-f, --file <file>', 'the file, - for stdin')
    .option('--dry-run', 'print the diff, change nothing')
    .option('--prune', 'delete apps and networks the file leaves out')
    .option('--wait', 'wait until every app of the file runs')
    .option('--timeout <seconds>', 'give up waiting after this long (exit code 9)', '300')
    .action(async (o: { file: string; dryRun?: boolean; prune?: boolean; wait?: boolean; timeout: string }) => {
      const c = ctx()
      const file = readSpecFile(o.file, ZApplyFile)
      const tenantId = await c.tenantId()
      const t = `/tenants/${tenantId}`
      const [summaries, networks] = await Promise.all([c.api.get<TAppSummary[]>(`${t}/apps`), c.api.get<TNetwork[]>(`${t}/networks`)])
      const etags = new Map<string, string>()
      const apps = await Promise.all(
        summaries.map(async (s) => {
          const res = await c.api.request<TAppDetail>('GET', `${t}/apps/${s.id}`)
          etags.set(s.id, res.headers.get('etag') ?? '*')
          return res.body
        }),
      )
      const plan = planApply(file, { apps, networks }, { prune: !!o.prune })
      if (c.out.json && o.dryRun) return c.out.result(plan, () => '')
      process.stderr.write(describePlan(plan))
      if (plan.problems.length) throw new CliError(`apply cannot converge (${plan.problems.length} problem${plan.problems.length === 1 ? '' : 's'}); nothing was changed`, EXIT.conflict, plan)
      if (o.dryRun) return c.out.result(plan, () => `${plan.changes.length} change${plan.changes.length === 1 ? '' : 's'} (dry run: nothing was changed)`)

      const run = async (ch: Change) => {
        if (ch.kind === 'create-network') await c.api.post(`${t}/networks`, { name: ch.name, ...(ch.cidr && { cidr: ch.cidr }) })
        if (ch.kind === 'delete-network') await c.api.delete(`${t}/networks/${ch.id}`)
        if (ch.kind === 'create-app') await c.api.post(`${t}/apps`, ch.app)
        if (ch.kind === 'delete-app') await c.api.delete(`${t}/apps/${ch.id}`)
        if (ch.kind === 'update-app') {
          await c.api.patch(`${t}/apps/${ch.id}`, { spec: ch.spec }, { 'if-match': etags.get(ch.id) ?? '*' })
          // The scale that may follow starts from the app as this update left it.
          etags.set(ch.id, '*')
        }
        if (ch.kind === 'scale-app') await c.api.post(`${t}/apps/${ch.id}/scale`, { replicas: ch.to }, { 'if-match': etags.get(ch.id) ?? '*' })
      }
      for (const ch of plan.changes) await run(ch)
      c.out.note(`applied ${plan.changes.length} change${plan.changes.length === 1 ? '' : 's'}`)
      if (o.wait) {
        const now = await c.api.get<TAppSummary[]>(`${t}/apps`)
        for (const a of file.apps) {
          const id = now.find((x) => x.name === a.name)?.id
          if (id) await waitForApp(c, { tenantId, appId: id }, Number(o.timeout))
        }
      }
      c.out.result(plan, () => `${plan.changes.length} change${plan.changes.length === 1 ? '' : 's'} applied`)
    })
}
