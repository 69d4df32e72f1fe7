import type { TTenant } from '@alveary/core'
import { createClient, type Client } from './client'
import { readConfig } from './config'
import { CliError, EXIT } from './errors'
import { createOutput, type Output } from './output'

export interface GlobalOptions {
  server?: string
  token?: string
  tenant?: string
  json?: boolean
}

export const USER_AGENT = 'alveary-cli/0.1.0'
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
export const isUuid = (s: string) => UUID.test(s)

/** What every command works with: the API client, the output, and the tenant (resolved on demand). */
export interface Ctx {
  api: Client
  out: Output
  tenantId(): Promise<string>
}

/** Flags win over the environment (ALVEARY_SERVER, ALVEARY_TOKEN, ALVEARY_TENANT), which wins over `alveary login`'s file. */
export function contextFrom(g: GlobalOptions, env: NodeJS.ProcessEnv = process.env): Ctx {
  const saved = readConfig()
  const server = g.server ?? env['ALVEARY_SERVER'] ?? saved?.server
  const token = g.token ?? env['ALVEARY_TOKEN'] ?? saved?.token ?? null
  if (!server) throw new CliError('No server: run `alveary login --server URL …` (or pass --server / set ALVEARY_SERVER)', EXIT.denied)
  const api = createClient({ server, token, userAgent: USER_AGENT })
  const tenant = g.tenant ?? env['ALVEARY_TENANT'] ?? saved?.tenant
  let tenantId: Promise<string> | null = null
  return {
    api,
    out: createOutput(!!g.json),
    tenantId: () => (tenantId ??= resolveTenant(api, tenant)),
  }
}

async function resolveTenant(api: Client, wanted: string | undefined): Promise<string> {
  if (wanted && isUuid(wanted)) return wanted
  const tenants = await api.get<TTenant[]>('/tenants')
  if (!wanted) {
    // A token belongs to one tenant; a person in one tenant needs no flag either.
    if (tenants.length === 1) return tenants[0]!.id
    throw new CliError(`Which tenant? Pass --tenant (one of: ${tenants.map((t) => t.slug).join(', ') || 'none'}) or run \`alveary tenants use SLUG\``, EXIT.usage)
  }
  const t = tenants.find((x) => x.slug === wanted)
  if (!t) throw new CliError(`No tenant ${wanted} (yours: ${tenants.map((x) => x.slug).join(', ') || 'none'})`, EXIT.notFound)
  return t.id
}

/** An app by name or id. */
export async function resolveApp(ctx: Ctx, ref: string): Promise<{ tenantId: string; appId: string }> {
  const tenantId = await ctx.tenantId()
  if (isUuid(ref)) return { tenantId, appId: ref }
  const apps = await ctx.api.get<{ id: string; name: string }[]>(`/tenants/${tenantId}/apps`)
  const app = apps.find((a) => a.name === ref)
  if (!app) throw new CliError(`No app ${ref} in this tenant`, EXIT.notFound)
  return { tenantId, appId: app.id }
}

/** Waits for `done` (polling), showing progress; exit code 9 after `timeoutSeconds`. */
export async function waitUntil<T>(ctx: Ctx, what: string, timeoutSeconds: number, poll: () => Promise<{ done: boolean; progress: string; value: T }>): Promise<T> {
  const deadline = Date.now() + timeoutSeconds * 1000
  let last = ''
  for (;;) {
    const r = await poll()
    if (r.progress !== last) ctx.out.note(`${what}: ${r.progress}`)
    last = r.progress
    if (r.done) return r.value
    if (Date.now() > deadline) throw new CliError(`Timed out after ${timeoutSeconds} s waiting for ${what} (${r.progress})`, EXIT.timeout)
    await new Promise((ok) => setTimeout(ok, 1000))
  }
}
