/**
 * Links as iproute2 shows them (`ip -j link|addr show`), and the calls every network driver
 * makes with `ip`: one command, JSON output, a batch of commands in a namespace.
 */
import type { Tools } from './exec'

/** The fields of `ip -j [-d] addr|link show` the drivers read. */
export interface IpLink {
  ifname: string
  address?: string
  mtu?: number
  master?: string
  flags?: string[]
  linkinfo?: { info_data?: { id?: number; local?: string; port?: number } }
  /** With `-d`: the link's alias, if set. */
  ifalias?: string
  /** `address`: the peer of a point-to-point address. */
  addr_info?: Array<{ family: string; local: string; address?: string; prefixlen: number }>
}

export const isUp = (l: IpLink | undefined) => !!l?.flags?.includes('UP')

export function createIp(tools: Tools) {
  const json = <T>(args: string[]) => tools.json<T>('ip', ['-j', ...args])
  return {
    run: (args: string[]) => tools.run('ip', args),
    json,
    /** `ip -j <args>` (a `link` or `addr show`) by interface name. */
    links: async (args: string[]) => new Map((await json<IpLink[]>(args)).map((l) => [l.ifname, l])),
    /** One `ip -batch` in a namespace (null: the node's); no commands, no process. */
    batch: (ns: string | null, cmds: string[]) => (cmds.length ? tools.run('ip', [...(ns ? ['-n', ns] : []), '-batch', '-'], cmds.join('\n') + '\n') : Promise.resolve('')),
  }
}
export type Ip = ReturnType<typeof createIp>
