import type { TAppDetail, TAppSummary, TLoadBalancer, TNetwork } from '@alveary/core'
import type { Command } from 'commander'
import { waitForApp } from '../commands/apps'
import type { Ctx } from '../context'
import { CliError, EXIT } from '../errors'
import { readSpecFile } from '../files'
import { lbInput } from './load-balancers'
import { describePlan, planApply, ZApplyFile, type Change } from './plan'

/**
 * `alveary apply -f FILE`: converges the tenant's networks, apps (with their volumes) and load
 * balancers to the file, like `kubectl apply`. It prints the diff first; --dry-run stops
 * there. Updates carry the ETag the plan was made from (If-Match), so a change someone made
 * meanwhile stops the apply (exit code 5) instead of being overwritten.
 */
export function registerApply(program: Command, ctx: () => Ctx) {
  program
    .command('apply')
    .description('Make the tenant match a file of networks, apps (with volumes) and load balancers (YAML or JSON); prints the diff first')
    .requiredOption('-f, --file <file>', 'the file, - for stdin')
    .option('--dry-run', 'print the diff, change nothing')
    .option('--prune', 'delete networks, apps and load balancers the file leaves out')
    .option('--wait', 'wait until every app of the file runs')
    .option('--timeout <seconds>', 'give up waiting after this long (exit code 9)', '300')
    .action(async (o: { file: string; dryRun?: boolean; prune?: boolean; wait?: boolean; timeout: string }) => {
      const c = ctx()
      const file = readSpecFile(o.file, ZApplyFile)
      const tenantId = await c.tenantId()
      const t = `/tenants/${tenantId}`
      const [summaries, networks, lbList] = await Promise.all([c.api.get<TAppSummary[]>(`${t}/apps`), c.api.get<TNetwork[]>(`${t}/networks`), c.api.get<TLoadBalancer[]>(`${t}/load-balancers`)])
      // Each object read on its own, for the ETag its update will carry.
      const etags = new Map<string, string>()
      const read = async <T>(path: string, id: string) => {
        const res = await c.api.request<T>('GET', path)
        etags.set(id, res.headers.get('etag') ?? '*')
        return res.body
      }
      const [apps, loadBalancers] = await Promise.all([
        Promise.all(summaries.map((s) => read<TAppDetail>(`${t}/apps/${s.id}`, s.id))),
        Promise.all(lbList.map((l) => read<TLoadBalancer>(`${t}/load-balancers/${l.id}`, l.id))),
      ])
      const plan = planApply(file, { apps, networks, loadBalancers }, { prune: !!o.prune })
      if (c.out.json && o.dryRun) return c.out.result(plan, () => '')
      process.stderr.write(describePlan(plan))
      if (plan.problems.length) throw new CliError(`apply cannot converge (${plan.problems.length} problem${plan.problems.length === 1 ? '' : 's'}); nothing was changed`, EXIT.conflict, plan)
      if (o.dryRun) return c.out.result(plan, () => `${plan.changes.length} change${plan.changes.length === 1 ? '' : 's'} (dry run: nothing was changed)`)

      // App ids by name, for load balancer targets (apps this apply creates included).
      const appIds = new Map(apps.map((a) => [a.name, a.id]))
      const run = async (ch: Change) => {
        if (ch.kind === 'create-network') await c.api.post(`${t}/networks`, { name: ch.name, ...(ch.cidr && { cidr: ch.cidr }) })
        if (ch.kind === 'delete-network') await c.api.delete(`${t}/networks/${ch.id}`)
        if (ch.kind === 'create-app') appIds.set(ch.app.name, (await c.api.post<TAppSummary>(`${t}/apps`, ch.app)).id)
        if (ch.kind === 'delete-app') await c.api.delete(`${t}/apps/${ch.id}`)
        if (ch.kind === 'update-app') {
          await c.api.patch(`${t}/apps/${ch.id}`, { spec: ch.spec }, { 'if-match': etags.get(ch.id) ?? '*' })
          // The scale that may follow starts from the app as this update left it.
          etags.set(ch.id, '*')
        }
        if (ch.kind === 'scale-app') await c.api.post(`${t}/apps/${ch.id}/scale`, { replicas: ch.to }, { 'if-match': etags.get(ch.id) ?? '*' })
        if (ch.kind === 'create-lb') await c.api.post(`${t}/load-balancers`, { name: ch.name, ...lbInput(ch.lb, appIds) })
        if (ch.kind === 'update-lb') await c.api.put(`${t}/load-balancers/${ch.id}`, lbInput(ch.lb, appIds), { 'if-match': etags.get(ch.id) ?? '*' })
        if (ch.kind === 'delete-lb') await c.api.delete(`${t}/load-balancers/${ch.id}`)
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
