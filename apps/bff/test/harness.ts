import net from 'node:net'
import { createAgent, ZAgentConfig, type Agent } from '@alveary/agents'
import pino, { type Logger } from 'pino'
import type { Actor, TMemberRole } from '@alveary/core'
import { startBff, type StartedBff } from '../src/bff'
import { repoRoot, ZBffEnv } from '../src/config'
import { freshDatabase } from '../src/fresh-database'

export { freshDatabase }
import { createCallerFactory, type Context } from '../src/trpc'
import { retireConfig, retireNode } from './cluster'
import { appRouter } from '../src/router'

export const OPERATOR = { email: 'operator@test.local', password: 'operator-password' }

export interface TestBff extends StartedBff {
  dropDatabase(): Promise<void>
}

export async function startTestBff(env: Record<string, string> = {}, opts: { log?: Logger } = {}): Promise<TestBff> {
  const db = await freshDatabase()
  // Each test BFF hands out its own host-port range, so parallel test files never collide;
  // all below 32768, where Linux takes ephemeral ports for outgoing connections.
  const portBase = 20_000 + Math.floor(Math.random() * 100) * 100
  const bff = await startBff(
    ZBffEnv.parse({
      DATABASE_URL: db.url,
      BFF_PORT: '0',
      BFF_HOST: '127.0.0.1',
      ALVEARY_OPERATOR_EMAIL: OPERATOR.email,
      ALVEARY_OPERATOR_PASSWORD: OPERATOR.password,
      ALVEARY_HEARTBEAT_MS: '500',
      ALVEARY_PASSWORD_HASH_COST: '14',
      ALVEARY_NODE_LEASE_MS: '3000',
      ALVEARY_STOPPED_RETENTION_MS: '60000',
      ALVEARY_HOST_PORT_MIN: String(portBase),
      ALVEARY_HOST_PORT_MAX: String(portBase + 99),
      ...env,
    }),
    { log: opts.log ?? pino({ level: process.env.TEST_LOG ?? 'silent' }) },
  )
  return {
    ...bff,
    async stop() {
      await bff.stop()
    },
    dropDatabase: () => db.drop(),
  }
}

const createCaller = createCallerFactory(appRouter)

/** A router caller with a real context: logs in through core like the HTTP path does. */
export async function callerFor(bff: StartedBff, email: string, password: string) {
  const { token } = await bff.core.auth.login(email, password, { address: '127.0.0.1' })
  const actor = (await bff.core.auth.resolve(token)) as Actor
  return callerWithActor(bff, actor, token)
}

export function callerWithActor(bff: StartedBff, actor: Actor | null, token: string | null = null) {
  const ctx: Context = {
    core: bff.core,
    bus: bff.bus,
    actor,
    token,
    clientAddress: '127.0.0.1',
    setSessionCookie: () => {},
    clearSessionCookie: () => {},
  }
  return createCaller(ctx)
}

export type Caller = ReturnType<typeof callerWithActor>

/**
 * A new account in a tenant, the way people join: `inviter` invites the e-mail, the invited
 * person creates the account through the link. An operator can only invite the first owner
 * of a tenant that has none.
 */
export async function addMember(bff: StartedBff, inviter: Caller, tenantId: string, m: { email: string; name: string; password: string; role: TMemberRole }) {
  const { token } = await inviter.invitations.create({ tenantId, email: m.email, role: m.role })
  await callerWithActor(bff, null).invitations.signUp({ token, name: m.name, password: m.password })
  const member = (await inviter.members.list({ tenantId })).find((x) => x.email === m.email)
  return { userId: member!.userId }
}

/** A new tenant (created by the operator `op`) with one owner, signed in: the usual start of a tenant's test. */
export async function tenantWithOwner(bff: StartedBff, op: Caller, tenant: Parameters<Caller['tenants']['create']>[0], owner: { email: string; name: string; password: string }) {
  const tenantId = (await op.tenants.create(tenant)).id
  const { userId } = await addMember(bff, op, tenantId, { ...owner, role: 'owner' })
  return { tenantId, userId, caller: await callerFor(bff, owner.email, owner.password) }
}

/**
 * A listener port nothing on this machine holds. 17000-19999 is below every range instances get
 * host ports from (the control plane's default 20000-29999, the test agents' ranges up to 32767,
 * the e2e slots' 11000-16799), so a scheduled instance cannot take it between this probe and the
 * test's listen.
 */
export async function freeListenerPort(): Promise<number> {
  for (;;) {
    const port = 17_000 + Math.floor(Math.random() * 3_000)
    const free = await new Promise<boolean>((resolve) => {
      const srv = net.createServer()
      srv.once('error', () => resolve(false))
      srv.listen(port, '0.0.0.0', () => srv.close(() => resolve(true)))
    })
    if (free) return port
  }
}

/** Signals a process that may have exited already (a cleanup must not fail on one that is gone). */
export function killIfAlive(pid: number, signal: NodeJS.Signals = 'SIGTERM'): void {
  try {
    process.kill(pid, signal)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err
  }
}

export async function waitFor<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 15_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  while (Date.now() < deadline) {
    try {
      const v = await fn()
      if (v) return v
    } catch (err) {
      last = err
    }
    await new Promise((r) => setTimeout(r, everyMs))
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`)
}

/**
 * Waits for `count` ready nodes. Agents are separate processes that compile and connect
 * first: on a loaded 2-core machine (CI with neighbours) that alone has taken over 30 s,
 * hence the long default; a timeout names every node's state.
 */
export async function readyNodes(op: Caller, count: number, timeoutMs = 90_000) {
  return waitFor(`${count} ready nodes`, async () => {
    const nodes = await op.nodes.list()
    return nodes.filter((n) => n.state === 'ready').length === count && nodes
  }, timeoutMs).catch(async (err) => {
    const nodes = await op.nodes.list().catch(() => [])
    throw new Error(`${(err as Error).message}; nodes: ${JSON.stringify(nodes.map((n) => [n.name, n.state, n.connected]))}`)
  })
}

/** Every in-process agent this test file started: retired after the file (test/setup.ts). */
const inProcessAgents: Array<{ agent: Agent; name: string; dataDir: string }> = []

/**
 * Stops every in-process agent this file started (with its instances: a test may have left one
 * running, or restarted one without stopping them) and retires its node as an operator would;
 * returns what was still on the machine after that (removed now): a leak to report.
 */
export async function retireInProcessAgents(): Promise<string[]> {
  const left: string[] = []
  for (const { agent, name, dataDir } of inProcessAgents.splice(0)) {
    await agent.shutdown({ stopInstances: true }).catch(() => {})
    left.push(...(await retireNode(retireConfig(dataDir, name))).map((x) => `${name}: ${x}`))
  }
  return left
}

/** An agent in this process (real WebSocket, real processes or containers), started and connected. */
export async function startInProcessAgent(o: { server: string; joinToken: string; name: string; dataDir: string; dockerHost?: string; portRange?: string }) {
  const agent = createAgent(
    ZAgentConfig.parse({
      server: o.server,
      joinToken: o.joinToken,
      name: o.name,
      address: '127.0.0.1',
      labels: '',
      cpuMillis: '4000',
      memoryMb: '4096',
      dataDir: o.dataDir,
      stopOnExit: false,
      logLevel: 'silent',
      dockerHost: o.dockerHost ?? 'none',
      ...(o.portRange && { portRange: o.portRange }),
    }),
    { cwd: repoRoot, restartBackoff: { baseMs: 200, capMs: 2000 } },
  )
  inProcessAgents.push({ agent, name: o.name, dataDir: o.dataDir })
  await agent.start()
  return agent
}
