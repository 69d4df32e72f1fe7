import type { TObservedState } from '../protocol'
import type { MoveNode, Observed } from './types'

const TERMINAL: ReadonlySet<TObservedState> = new Set(['stopped', 'exited', 'failed'])

export type FenceVerdict = { stopped: true; detail: string } | { stopped: false; detail: string }

/**
 * Is the instance's copy on `node` certainly not running? Either its agent reported it
 * stopped after we asked (`since`), or the node has not renewed its lease for longer than
 * its watchdogs allow (self-fencing), so they have stopped it whether or not the agent lives.
 * A node that cannot fence itself and does not answer is never assumed stopped.
 */
export function fenceVerdict(o: { observed: Observed | null; node: MoveNode | null; since: Date; now: Date; selfFenceMs: number; marginMs: number }): FenceVerdict {
  const { observed, node, now } = o
  if (!node) return { stopped: false, detail: 'the node is unknown: cannot tell whether the instance still runs there' }
  if (observed && observed.nodeId === node.id && TERMINAL.has(observed.state) && observed.at >= o.since) {
    return { stopped: true, detail: `stopped on ${node.name}` }
  }
  const silentMs = node.lastHeartbeatAt ? now.getTime() - node.lastHeartbeatAt.getTime() : Number.POSITIVE_INFINITY
  const waitMs = o.selfFenceMs + o.marginMs
  const canFence = node.volume?.selfFence === true
  if (silentMs >= waitMs && canFence) {
    const at = node.lastHeartbeatAt ? new Date(node.lastHeartbeatAt.getTime() + o.selfFenceMs).toISOString() : 'long ago'
    return { stopped: true, detail: `${node.name} is lost; its watchdog stopped the instance by ${at} (lease not renewed for ${Math.round(o.selfFenceMs / 1000)}s)` }
  }
  if (node.connected && silentMs < waitMs) return { stopped: false, detail: `waiting for the instance to stop on ${node.name}` }
  if (!canFence) {
    return { stopped: false, detail: `${node.name} does not answer and cannot stop instances by itself${node.volume?.selfFenceReason ? ` (${node.volume.selfFenceReason})` : ''}: waiting for it to return` }
  }
  return { stopped: false, detail: `waiting for ${node.name} to fence itself (${Math.ceil((waitMs - silentMs) / 1000)}s)` }
}
