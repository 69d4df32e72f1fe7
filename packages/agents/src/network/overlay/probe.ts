/**
 * Can this node run the overlay? Root, iproute2, nftables, sysctl and nsenter present, the
 * underlay address on a local interface, and a namespace and a VXLAN device that can really
 * be created (and are removed again). The answer is advertised in hello (`overlay` or `host`).
 */
import type { Tools } from '../exec'
import { VXLAN_PORT, type OverlayNames } from '../names'

export type OverlayProbe = { ok: true } | { ok: false; reason: string }

const IPV4 = /^(\d{1,3})(\.\d{1,3}){3}$/

export async function probeOverlay(tools: Tools, names: OverlayNames, vtep: string): Promise<OverlayProbe> {
  if (process.getuid?.() !== 0) return { ok: false, reason: 'the agent is not root (namespaces, bridges and VXLAN need root)' }
  for (const [tool, args] of [['ip', ['-V']], ['bridge', ['-V']], ['nft', ['--version']], ['sysctl', ['--version']], ['nsenter', ['--version']]] as const) {
    try {
      await tools.run(tool, args)
    } catch {
      return { ok: false, reason: `${tool} is missing (install iproute2, nftables, procps and util-linux)` }
    }
  }
  if (!IPV4.test(vtep)) return { ok: false, reason: `the node address "${vtep}" is not an IPv4 address (pass --address with the node's IP)` }
  const links = await tools.json<Array<{ addr_info?: Array<{ local: string }> }>>('ip', ['-j', 'addr', 'show'])
  if (!links.some((l) => l.addr_info?.some((a) => a.local === vtep))) return { ok: false, reason: `no interface of this node has the address ${vtep}` }
  const ns = `${names.prefix}-probe`
  const dev = names.vxlanTmp(0)
  try {
    await tools.run('ip', ['netns', 'add', ns])
    await tools.run('ip', ['link', 'add', dev, 'type', 'vxlan', 'id', '1', 'dstport', String(VXLAN_PORT), 'local', vtep, 'nolearning'])
    await tools.run('nft', ['list', 'tables'])
    return { ok: true }
  } catch (err) {
    return { ok: false, reason: `cannot create namespaces, VXLAN devices or read nftables: ${(err as Error).message}` }
  } finally {
    await tools.run('ip', ['link', 'del', dev]).catch(() => {})
    await tools.run('ip', ['netns', 'del', ns]).catch(() => {})
  }
}
