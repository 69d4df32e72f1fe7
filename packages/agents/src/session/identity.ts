/**
 * Who the agent says it is: the node credential stored at the first welcome, else the join
 * token. When the server rejects the credential and a join token exists, the next hello joins
 * with the token; when it rejects the token, the next tries the credential again (the operator
 * may have fixed either).
 */
import type { Logger } from 'pino'
import type { THello } from '@alveary/core/protocol'
import type { CredentialStore, StoredCredential } from '../credentials'

export function createIdentity(o: { credentials: CredentialStore; joinToken: string | undefined; log: Logger }) {
  const { credentials, joinToken, log } = o
  let credential: StoredCredential | null = null
  /** Set when the server rejected the stored credential and a join token exists to fall back on. */
  let credentialRejected = false
  let lastAuth: 'credential' | 'joinToken' = 'joinToken'
  let nodeId: string | null = null

  return {
    /** Node id from the stored credential or the last welcome; null before either. */
    get nodeId() {
      return nodeId
    },

    /** Reads the stored credential (null: none); throws when it is there but unreadable. */
    async load(): Promise<StoredCredential | null> {
      credential = await credentials.load()
      nodeId = credential?.nodeId ?? null
      return credential
    },

    /** The auth of the next hello; null: nothing to authenticate with. */
    auth(): THello['auth'] | null {
      if (credential && !(credentialRejected && joinToken)) {
        lastAuth = 'credential'
        return { nodeId: credential.nodeId, credential: credential.credential }
      }
      if (!joinToken) return null
      lastAuth = 'joinToken'
      return { joinToken }
    },

    /** A welcome: its node id, and the credential of a join, stored for the next start. */
    welcomed(msg: { nodeId: string; credential?: string | undefined }): void {
      if (credential && msg.nodeId !== credential.nodeId && !msg.credential) {
        log.warn({ stored: credential.nodeId, welcomed: msg.nodeId }, 'server welcomed us under another node id than the stored one')
      }
      nodeId = msg.nodeId
      if (msg.credential) {
        credential = { nodeId: msg.nodeId, credential: msg.credential }
        credentialRejected = false
        credentials.save(credential).then(
          () => log.info({ nodeId: msg.nodeId, path: credentials.path }, 'joined; credential stored'),
          (err) => log.error({ err, path: credentials.path }, 'could not store the node credential; the next start will need the join token again'),
        )
      }
    },

    /** The server refused the last hello's auth: says so, and picks what the next one tries. */
    rejected(reason: string): void {
      if (lastAuth === 'credential') {
        log.error(
          { reason, nodeId: credential?.nodeId, path: credentials.path },
          joinToken
            ? `the server rejected the stored node credential (${reason}); falling back to the join token`
            : `the server rejected the stored node credential (${reason}); retrying. Fix it on the server, or delete ${credentials.path} and pass --join-token`,
        )
        if (joinToken) credentialRejected = true
      } else {
        log.error({ reason }, `the server rejected the join token (${reason}); retrying`)
        // Maybe the operator fixed the credential instead: alternate back to it.
        credentialRejected = false
      }
    },
  }
}
export type Identity = ReturnType<typeof createIdentity>
