/**
 * What the isolated namespaces of sandboxed host-networking instances (isolated.ts) need of the
 * node: root and the tools, probed at the agent's start; and the resolvers such an instance can reach.
 */
import { readFile } from 'node:fs/promises'
import type { Logger } from 'pino'
import { upstreamsOf } from './dns/responder'
import type { Tools } from './exec'

export type IsolationProbe = { ok: true } | { ok: false; reason: string }

/** Root, iproute2, nftables and sysctl: what a namespace and its port forwards need. */
export async function probeIsolation(tools: Tools): Promise<IsolationProbe> {
  if (process.getuid?.() !== 0) return { ok: false, reason: 'the agent is not root' }
  for (const [tool, args] of [['ip', ['-V']], ['nft', ['--version']], ['sysctl', ['--version']]] as const) {
    try {
      await tools.run(tool, args)
    } catch {
      return { ok: false, reason: `${tool} is missing (install iproute2, nftables and procps)` }
    }
  }
  try {
    await tools.run('nft', ['list', 'tables'])
  } catch (err) {
    return { ok: false, reason: `cannot read nftables: ${(err as Error).message}` }
  }
  return { ok: true }
}

/**
 * The node's resolvers as an isolated instance can reach them: /etc/resolv.conf when it names
 * one off loopback; systemd-resolved's list of upstreams when the node's is its 127.0.0.53 stub.
 */
export async function resolvConfFor(log: Logger): Promise<string | undefined> {
  const own = await readFile('/etc/resolv.conf', 'utf8').catch(() => '')
  if (upstreamsOf(own).some((ip) => !ip.startsWith('127.'))) return undefined
  const resolved = '/run/systemd/resolve/resolv.conf'
  if (upstreamsOf(await readFile(resolved, 'utf8').catch(() => '')).length) return resolved
  log.warn('network: the node resolves names through loopback only; sandboxed instances on host networking cannot resolve names')
  return undefined
}
