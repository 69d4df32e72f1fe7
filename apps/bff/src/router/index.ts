import { router } from '../trpc'
import { appsRouter, eventsRouter } from './apps'
import { auditRouter } from './audit'
import { authRouter } from './auth'
import { invitationsRouter } from './invitations'
import { liveRouter } from './live'
import { movesRouter } from './moves'
import { loadBalancersRouter } from './load-balancers'
import { joinTokensRouter, nodesRouter } from './nodes'
import { networksRouter } from './networks'
import { logsRouter, metricsRouter } from './telemetry'
import { membersRouter, tenantsRouter } from './tenants'
import { tokensRouter } from './tokens'

export const appRouter = router({
  auth: authRouter,
  tenants: tenantsRouter,
  members: membersRouter,
  invitations: invitationsRouter,
  apps: appsRouter,
  events: eventsRouter,
  nodes: nodesRouter,
  joinTokens: joinTokensRouter,
  live: liveRouter,
  logs: logsRouter,
  tokens: tokensRouter,
  metrics: metricsRouter,
  moves: movesRouter,
  loadBalancers: loadBalancersRouter,
  networks: networksRouter,
  audit: auditRouter,
})
export type AppRouter = typeof appRouter
