import type { ControlPlane } from '@alveary/core'
import type { TCommandProgressFrame, TCommandResultFrame, TServerMessage } from '@alveary/core/protocol'
import type { Logger } from 'pino'

/**
 * The gateway's side of the AgentCommands port: commands persisted by core are sent to
 * the node's agent over its socket (when it connects, and whenever new ones wait), and
 * its acknowledgements and progress go back to core. A command not answered when the
 * socket drops is sent again on the next connection; agents answer a repeated id from memory.
 */
export function createCommandDelivery({ core, log }: { core: ControlPlane; log: Logger }) {
  return {
    async deliver(nodeId: string, send: (msg: TServerMessage) => void): Promise<void> {
      for (const c of await core.commands.claim(nodeId)) send({ type: 'command', id: c.id, command: c.command })
    },
    async answered(nodeId: string, msg: TCommandResultFrame): Promise<void> {
      if (msg.ok) await core.commands.complete(nodeId, msg.id, { ok: true, result: msg.result ?? {} })
      else await core.commands.complete(nodeId, msg.id, { ok: false, error: msg.error ?? 'failed' })
      log.debug({ nodeId, id: msg.id, ok: msg.ok }, 'agent command answered')
    },
    progress: (nodeId: string, msg: TCommandProgressFrame) => core.commands.progress(nodeId, msg.id, msg.progress),
  }
}
