import { createAppCommands, type AppCommandDeps } from './app-commands'
import { createAppQueries } from './app-queries'

/** The app service: its queries (app-queries.ts) and commands (app-commands.ts) as one object. */
export function createAppService(deps: AppCommandDeps) {
  return { ...createAppQueries(deps), ...createAppCommands(deps) }
}
export type AppService = ReturnType<typeof createAppService>
