import { connection } from 'next/server'
import { NodesView } from './nodes-view'

/**
 * Reads where agents connect at request time (the same build serves any BFF): the agent
 * command shown with a new join token points there. ALVEARY_AGENT_SERVER_URL overrides it
 * when agents reach the BFF under another name than the console does.
 */
export default async function NodesPage() {
  await connection()
  const explicit = process.env['ALVEARY_AGENT_SERVER_URL'] ?? null
  let bffPort = '4000'
  try {
    const u = new URL(process.env['BFF_URL'] || 'http://127.0.0.1:4000')
    bffPort = u.port || (u.protocol === 'https:' ? '443' : '80')
  } catch {
    /* keep the default */
  }
  return <NodesView agentServer={explicit} bffPort={bffPort} />
}
