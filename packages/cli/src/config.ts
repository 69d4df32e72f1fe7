import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { z } from 'zod'

/** What `alveary login` stores: the server, a credential, and the tenant to use by default. */
export const ZCliConfig = z.object({
  server: z.string().url(),
  token: z.string().min(1),
  tenant: z.string().optional(),
})
export type TCliConfig = z.infer<typeof ZCliConfig>

/** $ALVEARY_CONFIG, else $XDG_CONFIG_HOME/alveary/config.json, else ~/.config/alveary/config.json. */
export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env['ALVEARY_CONFIG']) return env['ALVEARY_CONFIG']
  const base = env['XDG_CONFIG_HOME'] || path.join(os.homedir(), '.config')
  return path.join(base, 'alveary', 'config.json')
}

export function readConfig(file = configPath()): TCliConfig | null {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch {
    return null
  }
  const parsed = ZCliConfig.safeParse(JSON.parse(text))
  return parsed.success ? parsed.data : null
}

/** Written readable by its owner only: it holds a credential. */
export function writeConfig(config: TCliConfig, file = configPath()): void {
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 })
  writeFileSync(file, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 })
}
