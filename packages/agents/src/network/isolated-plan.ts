/**
 * Decisions of isolated.ts, pure: which link-local address an instance's namespace gets, and
 * the node's nftables table for those namespaces. Idempotency contract: an instance that has
 * an address keeps it; the same forwards render the same elements, the table itself never changes.
 */
import { createHash } from 'node:crypto'
import { NODE_TRANSIT_IP as NODE_SIDE, type OverlayNames } from './names'

/**
 * Instance addresses: 169.254.170.0 - 169.254.254.255. Below are the overlay's transit
 * addresses (169.254.16.0 - 169.254.168.255, from VXLAN ids) and 169.254.169.254 (cloud
 * metadata); the node side of every link is NODE_TRANSIT_IP, as on the overlay's transit links.
 */
const POOL_START = (170 << 8) >>> 0
const POOL_SIZE = (255 - 170) * 256

const addressOf = (k: number) => {
  const n = POOL_START + k
  return `169.254.${(n >>> 8) & 255}.${n & 255}`
}

/** True for an address of the pool (only those are ours to manage or avoid). */
export function inPool(ip: string): boolean {
  const m = /^169\.254\.(\d+)\.(\d+)$/.exec(ip)
  return !!m && Number(m[1]) >= 170 && Number(m[1]) <= 254
}

/**
 * The address of a new namespace: a hash of the instance id, then the next free one. `used`
 * holds every pool address on the node's links, whichever agent made them (several agents may
 * share a machine). The .0 and .255 of each /24 are skipped (some tools treat them as special).
 */
export function pickAddress(instanceId: string, used: ReadonlySet<string>): string {
  const start = createHash('sha256').update(instanceId).digest().readUInt32BE(0) % POOL_SIZE
  for (let i = 0; i < POOL_SIZE; i++) {
    const k = (start + i) % POOL_SIZE
    const low = k & 255
    if (low === 0 || low === 255) continue
    const ip = addressOf(k)
    if (!used.has(ip)) return ip
  }
  throw new Error('no free link-local address left for an instance namespace')
}

/** A published port of an isolated instance: the host port, forwarded to the same port inside. */
export interface IsolatedForward {
  hostPort: number
  ip: string
}

/**
 * The node's table for isolated namespaces. Published ports reach the instance from outside
 * and from the node itself (127.0.0.1 included: OUTPUT chain, masquerade, route_localnet on
 * these links only). Instances' own traffic leaves masqueraded; they may reach each other only
 * through published ports, and nothing of the node itself (counted: to_node). Its rules never
 * change: what does (the ports, the gone addresses) is in the map `ports` and the set `gone`
 * (renderElements), so a start changes elements, not chains (re-made chains re-register their
 * kernel hooks: replacing the whole table took 40–50 ms, the elements 19–28, at load 34).
 */
export function renderIsolatedTable(names: OverlayNames): string {
  const links = `${names.prefix}s*`
  const chain = (name: string, head: string, rules: string[]) => [`  chain ${name} {`, `    ${head}`, ...rules.map((r) => `    ${r}`), '  }']
  const dnat = ['fib daddr type local dnat ip to tcp dport map @ports']
  // Connections to an instance that has gone get a reset at once, as from a closed port on the
  // node: its address has no route any more, so they would otherwise hang until a timeout. Not
  // when the address leads into a veth again (another agent on this machine may have taken it).
  const reset = ['ip daddr @gone meta oifkind != "veth" meta l4proto tcp reject with tcp reset']
  return [
    `table inet ${names.isolatedTable} {`,
    '  counter to_node {}',
    '  map ports { type inet_service : ipv4_addr; }',
    '  set gone { type ipv4_addr; }',
    ...chain('prerouting', 'type nat hook prerouting priority dstnat; policy accept;', dnat),
    ...chain('output', 'type nat hook output priority -100; policy accept;', dnat),
    ...chain('postrouting', 'type nat hook postrouting priority srcnat; policy accept;', [
      `oifname "${links}" fib saddr type local masquerade`,
      `iifname "${links}" oifname != "${links}" masquerade`,
    ]),
    ...chain('output_filter', 'type filter hook output priority filter; policy accept;', reset),
    ...chain('forward', 'type filter hook forward priority filter; policy accept;', [
      ...reset,
      `iifname "${links}" oifname "${links}" ct status dnat accept`,
      `iifname "${links}" oifname "${links}" drop`,
    ]),
    ...chain('input', 'type filter hook input priority filter; policy accept;', [
      `iifname "${links}" ct state established,related accept`,
      `iifname "${links}" counter name to_node drop`,
    ]),
    '}',
  ].join('\n')
}

/**
 * The table's map and set, replaced whole (`forwards` in order of precedence; `gone`: addresses
 * whose connections are reset). Applied in one nft transaction, so no packet sees them half done.
 */
export function renderElements(names: OverlayNames, forwards: readonly IsolatedForward[], gone: readonly string[] = []): string {
  const t = `inet ${names.isolatedTable}`
  // One entry per port (nft refuses a key twice, and the whole transaction with it): the first given wins.
  const first = new Map<number, string>()
  for (const f of forwards) if (!first.has(f.hostPort)) first.set(f.hostPort, f.ip)
  const byPort = [...first].sort((a, b) => a[0] - b[0]).map(([port, ip]) => `${port} : ${ip}`)
  const ips = [...new Set(gone)].sort()
  return [
    `flush map ${t} ports`,
    ...(byPort.length ? [`add element ${t} ports { ${byPort.join(', ')} }`] : []),
    `flush set ${t} gone`,
    ...(ips.length ? [`add element ${t} gone { ${ips.join(', ')} }`] : []),
  ].join('\n')
}

/**
 * `nft -f` input that brings the table from `applied` (the elements last applied; null: no
 * table; undefined: unknown, after a failure) to `want` (null: no table), in one transaction;
 * undefined: nothing to do. `whole`: the table is made again too (a full pass: someone may have
 * flushed the ruleset). Otherwise only elements change once the table is there.
 */
export function renderTableChange(names: OverlayNames, want: string | null, applied: string | null | undefined, whole: boolean): string | undefined {
  if (!whole && want === applied) return undefined
  const t = names.isolatedTable
  const remove = [`table inet ${t} {}`, `delete table inet ${t}`]
  if (want === null) return remove.join('\n')
  if (whole || applied == null) return [...remove, renderIsolatedTable(names), want].join('\n')
  return want
}

/** What one pass changes: namespaces to build (`replace`: a broken one is in the way), the table, what goes. */
export interface IsolatedActions {
  /** `instanceId`: the id in the namespace's name (a pool namespace's own); `alias`: its veth's, which says whose it is (isolated.ts). */
  create: ReadonlyArray<{ instanceId: string; ip: string; replace: boolean; alias?: string }>
  /** `nft -f` input for the table (renderTableChange); undefined: leave it. */
  nft?: string
  /** Namespaces no longer needed, by the id in their names (each deleted once nothing runs in it), and links nothing needs. */
  removeIds: readonly string[]
  removeLinks: readonly string[]
}

/**
 * One pass's changes as one shell script, run as one process: every process the agent starts
 * costs tens of milliseconds on a busy node, and an instance's start waits for this. Prints
 * `ok <id>` or `fail <id> <why>` per namespace built, `table <status> <why>` and `gone <namespace>`
 * per namespace deleted; a failed part does not stop the others.
 */
export function renderActions(names: OverlayNames, a: IsolatedActions): string {
  const out: string[] = []
  const heredoc = (cmd: string, lines: readonly string[]) => [`${cmd} <<'ALVEARY'`, ...lines, 'ALVEARY']
  for (const c of a.create) {
    const N = names.isolatedNs(c.instanceId)
    const V = names.isolatedVeth(c.instanceId)
    out.push('err=$( (', 'set -e')
    if (c.replace) out.push(`ip link del ${V} 2>/dev/null || true`, `ip netns del ${N} 2>/dev/null || true`)
    // The node side's address last: a veth that has it belongs to a namespace that is complete.
    out.push(...heredoc('ip -batch -', [`netns add ${N}`, `link add ${V} type veth peer name eth0 netns ${N}`]))
    out.push(...heredoc(`ip -n ${N} -batch -`, ['link set lo up', `addr add ${c.ip} peer ${NODE_SIDE}/32 dev eth0`, 'link set eth0 up', `route add default via ${NODE_SIDE} dev eth0`]))
    // 127.0.0.1 → a published port leaves through this link (DNAT in OUTPUT): allowed on our links only.
    out.push(`echo 1 > /proc/sys/net/ipv4/conf/${V}/route_localnet`)
    out.push(...heredoc('ip -batch -', [...(c.alias ? [`link set dev ${V} alias ${c.alias}`] : []), `addr add ${NODE_SIDE} peer ${c.ip}/32 dev ${V}`, `link set ${V} up`]))
    out.push(`) 2>&1 ) && echo "ok ${c.instanceId}" || echo "fail ${c.instanceId} $(echo "$err" | tr '\\n' ' ')"`)
  }
  if (a.nft !== undefined) {
    out.push(...heredoc('nft_err=$(nft -f - 2>&1', [a.nft]), ')')
    out.push(`echo "table $? $(echo "$nft_err" | tr '\\n' ' ')"`)
  }
  // Its veth first: deleting it takes both ends at once, while a deleted namespace takes its veth
  // with it only when the kernel gets to it, later (seen as a link left after an agent's exit).
  for (const id of a.removeIds) {
    const [N, V] = [names.isolatedNs(id), names.isolatedVeth(id)]
    out.push(`[ -z "$(ip netns pids ${N} 2>/dev/null)" ] && { ip link del ${V} 2>/dev/null; ip netns del ${N}; } && echo "gone ${N}"`)
  }
  // -force: one that is gone already (a namespace takes its veth with it) does not stop the rest.
  if (a.removeLinks.length) out.push(...heredoc('ip -force -batch -', a.removeLinks.map((l) => `link del ${l}`)))
  if (out.length) out.push('true')
  return out.join('\n')
}
