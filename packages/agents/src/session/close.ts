/**
 * What a closed connection means for the agent, by the server's close code: come back after the
 * backoff (or when the server said), come back later at a time of its own, or give up (a
 * protocol version this agent does not speak). Each refusal is explained once in the log, in
 * terms an operator can act on.
 */
import type { Logger } from 'pino'
import { CloseCode, PROTOCOL_VERSION } from '@alveary/core/protocol'
import type { CloseDecision } from '../connection'
import { hintedDelay } from '../reconnect-delay'
import type { Identity } from './identity'

export function createClosePolicy(o: { name: string; identity: Identity; log: Logger }) {
  const { name, identity, log } = o
  let duplicateRefusals = 0

  return {
    /** Welcomed: the refusals counted so far are over. */
    welcomed(): void {
      duplicateRefusals = 0
    },

    /** `hintMs`: when the server said to come back. */
    decide(code: number, reason: string, hintMs: number | null): CloseDecision {
      switch (code) {
        case CloseCode.versionMismatch:
          log.fatal({ reason, protocolVersion: PROTOCOL_VERSION }, `the server does not speak this agent's protocol version ${PROTOCOL_VERSION}: ${reason}`)
          return 'stop'
        case CloseCode.unauthorized:
          identity.rejected(reason)
          return 'reconnect'
        case CloseCode.duplicate: {
          // A second agent with this node's identity (a copied data folder, a cloned machine): the
          // live one keeps the node. Come back when it could be gone, and say so only now and then.
          duplicateRefusals++
          const retryInMs = hintedDelay(Math.max(hintMs ?? 0, 5_000))
          if (duplicateRefusals === 1 || duplicateRefusals % 10 === 0)
            log.error(
              { reason, refusals: duplicateRefusals, retryInMs },
              `node ${name} already has a live connection from another agent with the same identity (a copied --data-dir or a cloned machine?). Stop one of them; this one keeps waiting`,
            )
          return { retryInMs }
        }
        case CloseCode.nameTaken:
          log.error(
            { reason, retryInMs: 60_000 },
            `a node named ${name} already exists and joins never take a node over: start this agent with that node's data folder (its credential), pick another --name, or have an operator re-key the node and pass the re-key token as --join-token`,
          )
          return { retryInMs: hintedDelay(60_000) }
        case CloseCode.replaced:
          log.warn({ reason }, 'the server handed this node to another connection (this one looked silent, or a second agent shares the identity)')
          return 'reconnect'
        case CloseCode.badFrame:
          log.error({ reason }, 'the server rejected a frame from this agent')
          return 'reconnect'
        default:
          return 'reconnect'
      }
    },
  }
}
