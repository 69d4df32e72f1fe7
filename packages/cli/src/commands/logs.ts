import type { TLogLine } from '@alveary/core'
import type { Command } from 'commander'
import { resolveApp, type Ctx } from '../context'

/**
 * `alveary logs <app> [-f]`: the newest lines, then (with -f) new lines as they arrive. The
 * REST API pages by cursor (afterId); following polls it once a second.
 */
export function registerLogs(program: Command, ctx: () => Ctx) {
  program
    .command('logs <app>')
    .description('Output of an app’s instances (stdout and stderr)')
    .option('-f, --follow', 'keep printing new lines until Ctrl-C')
    .option('-i, --instance <id>', 'one instance only')
    .option('-n, --tail <lines>', 'how many of the newest lines to start with', '100')
    .action(async (ref: string, o: { follow?: boolean; instance?: string; tail: string }) => {
      const c = ctx()
      const r = await resolveApp(c, ref)
      const base = `/tenants/${r.tenantId}/apps/${r.appId}/logs?${o.instance ? `instanceId=${encodeURIComponent(o.instance)}&` : ''}`
      const print = (lines: TLogLine[]) => {
        for (const l of lines) process.stdout.write(c.out.json ? `${JSON.stringify(l)}\n` : `${l.instanceId.slice(0, 8)} ${l.stream === 'stderr' ? '!' : ' '} ${l.line}\n`)
      }
      let lines = await c.api.get<TLogLine[]>(`${base}limit=${Math.max(1, Math.min(2000, Number(o.tail) || 100))}`)
      print(lines)
      if (!o.follow) return
      let after = lines[lines.length - 1]?.id ?? '0'
      for (;;) {
        await new Promise((ok) => setTimeout(ok, 1000))
        lines = await c.api.get<TLogLine[]>(`${base}afterId=${after}&limit=2000`)
        print(lines)
        after = lines[lines.length - 1]?.id ?? after
      }
    })
}
