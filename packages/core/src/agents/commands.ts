import type { Clock } from '../clock'
import type { Prisma } from '../generated/prisma/client'
import { ZCommandProgress, ZCommandResult, type TAgentCommand, type TCommandProgress, type TCommandResult } from '../protocol'
import { ZChange, type ChangeBus, type TChange } from '../store/change-bus'
import { createBatchLoader } from '../store/batch-load'
import type { Db } from '../store/db'

/** Where a command stands, as its issuer sees it. */
export type CommandState =
  | { state: 'pending'; progress: TCommandProgress | null }
  | { state: 'done'; result: TCommandResult }
  | { state: 'failed'; error: string }

/**
 * The port through which core sends one-shot commands to agents (copy a volume to a peer,
 * prepare an instance): everything else reaches agents as desired state. Commands are
 * persisted, so whichever BFF holds the node's socket delivers them (the agent gateway) and
 * a restarted leader finds them again; `run` is idempotent by id, so a step that resumes
 * after a crash asks for the same command and gets its outcome instead of a second run.
 */
export interface AgentCommands {
  run(id: string, nodeId: string, command: TAgentCommand, opts: { timeoutMs: number; wake: TChange }): Promise<CommandState>
}

/** The durable command queue: the AgentCommands port for core, delivery and answers for the gateway. */
export function createCommandQueue({ db, bus, clock }: { db: Db; bus: ChangeBus; clock: Clock }) {
  const wake = (row: { wake: Prisma.JsonValue | null }) => {
    const c = ZChange.safeParse(row.wake)
    if (c.success) bus.publish(c.data)
  }

  const commands: AgentCommands = {
    async run(id, nodeId, command, opts) {
      const now = clock.now()
      let row = await db.agentCommand.findUnique({ where: { id } })
      if (!row) {
        row = await db.agentCommand.upsert({
          where: { id },
          create: { id, nodeId, kind: command.kind, payload: command, wake: opts.wake, expiresAt: new Date(now.getTime() + opts.timeoutMs) },
          update: {},
        })
        bus.publish({ kind: 'agent-command', nodeId })
      }
      if (row.state === 'done') return { state: 'done', result: ZCommandResult.parse(row.result ?? {}) }
      if (row.state === 'failed') return { state: 'failed', error: row.error ?? 'failed' }
      if (row.expiresAt <= now) {
        const error = `no answer from the node within ${Math.round(opts.timeoutMs / 1000)}s`
        const { count } = await db.agentCommand.updateMany({ where: { id, state: { in: ['pending', 'sent'] } }, data: { state: 'failed', error, doneAt: now } })
        if (count) return { state: 'failed', error }
        return commands.run(id, nodeId, command, opts)
      }
      const progress = ZCommandProgress.safeParse(row.progress)
      return { state: 'pending', progress: progress.success ? progress.data : null }
    },
  }

  // Every agent is sent its waiting commands on connecting: a fleet coming back reads them in batches.
  const waiting = createBatchLoader<string, { id: string; command: TAgentCommand }[]>({
    async loadMany(nodeIds) {
      const now = clock.now()
      const rows = await db.agentCommand.findMany({
        where: { nodeId: { in: nodeIds }, state: { in: ['pending', 'sent'] }, expiresAt: { gt: now } },
        orderBy: { createdAt: 'asc' },
        select: { id: true, nodeId: true, payload: true },
      })
      const out = new Map(nodeIds.map((id) => [id, [] as { id: string; command: TAgentCommand }[]]))
      for (const r of rows) {
        const list = out.get(r.nodeId)!
        if (list.length < 100) list.push({ id: r.id, command: r.payload as TAgentCommand })
      }
      const sent = [...out.values()].flat().map((c) => c.id)
      if (sent.length) await db.agentCommand.updateMany({ where: { id: { in: sent }, state: 'pending' }, data: { state: 'sent', sentAt: now } })
      return out
    },
    maxBatch: 500,
    concurrency: 2,
  })

  return {
    commands,
    /** Commands the gateway should (re)send to a node it holds: not answered and not expired (read with other nodes' when they connect together). */
    claim: (nodeId: string) => waiting.load(nodeId),
    /** An agent answered: only its own commands, only once. */
    async complete(nodeId: string, id: string, outcome: { ok: true; result: TCommandResult } | { ok: false; error: string }): Promise<void> {
      const row = await db.agentCommand.findFirst({ where: { id, nodeId, state: { in: ['pending', 'sent'] } }, select: { wake: true } })
      if (!row) return
      await db.agentCommand.updateMany({
        where: { id, nodeId, state: { in: ['pending', 'sent'] } },
        data: outcome.ok ? { state: 'done', result: outcome.result, doneAt: clock.now() } : { state: 'failed', error: outcome.error, doneAt: clock.now() },
      })
      wake(row)
    },
    async progress(nodeId: string, id: string, progress: TCommandProgress): Promise<void> {
      const rows = await db.agentCommand.updateManyAndReturn({ where: { id, nodeId, state: { in: ['pending', 'sent'] } }, data: { progress }, select: { wake: true } })
      rows.forEach(wake)
    },
    /** Answered or expired commands older than a day go. */
    async prune(): Promise<void> {
      await db.agentCommand.deleteMany({ where: { createdAt: { lt: new Date(clock.now().getTime() - 86_400_000) } } })
    },
  }
}
export type CommandQueue = ReturnType<typeof createCommandQueue>
