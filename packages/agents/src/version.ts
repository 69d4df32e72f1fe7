/** The agent's version (its package's), advertised in hello and printed by `alveary-agent --version`. */
import { readFileSync } from 'node:fs'

export const AGENT_VERSION: string = (() => {
  try {
    return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version
  } catch {
    return '0.0.0'
  }
})()
