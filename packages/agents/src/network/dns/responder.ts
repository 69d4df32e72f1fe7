/**
 * The node's DNS responder for tenant networks: one UDP socket in the agent, on the node side
 * of every transit link (169.254.0.1). Each router sends its instances' queries to the
 * gateway address here (nftables DNAT, masqueraded to the router's transit address), so the
 * source address says which network asks; the answer comes from that network's names only
 * (names.ts). Other names are relayed to the node's own resolvers, so instances still reach
 * the internet by name. In the agent rather than a process per router: the names are in the
 * agent's memory already, and one socket serves every network of the node.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram'
import { randomInt } from 'node:crypto'
import type { Logger } from 'pino'
import type { NameTable } from './names'
import { lookup } from './names'
import { CLASS_IN, encodeAnswer, encodeFormErr, parseQuery, RCODE, TYPE_A, type Query } from './wire'

export interface DnsResponderOptions {
  /** Address the socket binds to (it must exist on the node: bound once a transit link is up). */
  host: string
  /** Port; 0 (default): any free one, which the rules then point at. */
  port?: number
  /** Resolvers for other names, "ip" or "ip:port" (default: the node's /etc/resolv.conf). */
  upstreams: readonly string[]
  log: Logger
  /** Seconds answers may be cached. Addresses are sticky, but an app's set of instances changes. */
  ttl?: number
  /** A relayed query unanswered this long gets SERVFAIL. */
  forwardTimeoutMs?: number
  /**
   * Queries per second each network may ask (a token bucket per router: its instances share it),
   * so one tenant's flood cannot starve the others' names. Beyond it queries are dropped (clients
   * retry). Default 200/s, bursts of 400.
   */
  rate?: { perSecond: number; burst: number }
  now?: () => number
}

/** Token buckets by key; pure apart from the clock it is given. */
export function createBuckets(rate: { perSecond: number; burst: number }, now: () => number) {
  const buckets = new Map<string, { tokens: number; at: number }>()
  return {
    take(key: string): boolean {
      const t = now()
      const b = buckets.get(key) ?? { tokens: rate.burst, at: t }
      b.tokens = Math.min(rate.burst, b.tokens + ((t - b.at) / 1000) * rate.perSecond)
      b.at = t
      buckets.set(key, b)
      if (b.tokens < 1) return false
      b.tokens -= 1
      return true
    },
    /** Forgets keys that are gone (networks no longer on the node). */
    keep(keys: ReadonlySet<string>): void {
      for (const k of buckets.keys()) if (!keys.has(k)) buckets.delete(k)
    },
  }
}

/** IPv4 nameservers of a resolv.conf (what the node itself uses). */
export function upstreamsOf(resolvConf: string): string[] {
  return [...resolvConf.matchAll(/^\s*nameserver\s+(\d{1,3}(?:\.\d{1,3}){3})\s*$/gm)].map((m) => m[1]!)
}

const MAX_PENDING = 1024

/**
 * As many records as fit a 512-byte UDP answer (no EDNS, no TCP here), from a random start,
 * so a large app's instances all get their share of clients.
 */
function fitting(q: Query, ips: readonly string[]): string[] {
  const max = Math.floor((512 - 12 - q.question.length) / 16)
  if (ips.length <= max) return [...ips]
  const start = randomInt(ips.length)
  return Array.from({ length: max }, (_, k) => ips[(start + k) % ips.length]!)
}

export function createDnsResponder(opts: DnsResponderOptions) {
  const { log } = opts
  const ttl = opts.ttl ?? 5
  const forwardTimeoutMs = opts.forwardTimeoutMs ?? 3000
  const upstreams = opts.upstreams.map((u) => {
    const [host, port] = u.split(':')
    return { host: host!, port: Number(port ?? 53) }
  })
  /** Source address of the queries (a router's transit address) → that network's names. */
  let tables: ReadonlyMap<string, NameTable> = new Map()
  let server: Socket | null = null
  let relay: Socket | null = null
  let binding: Promise<number | null> | null = null
  let next = 0
  const now = opts.now ?? Date.now
  const buckets = createBuckets(opts.rate ?? { perSecond: 200, burst: 400 }, now)
  let dropped = 0
  let droppedLogged = 0
  const pending = new Map<number, { to: RemoteInfo; id: number; upstream: string; timer: NodeJS.Timeout }>()

  function send(to: RemoteInfo, msg: Buffer | null): void {
    if (msg) server?.send(msg, to.port, to.address)
  }

  function forward(msg: Buffer, id: number, to: RemoteInfo): void {
    const query = parseQuery(msg)
    const fail = () => send(to, query ? encodeAnswer(query, RCODE.servFail, [], 0) : null)
    const up = upstreams[next++ % Math.max(1, upstreams.length)]
    if (!up || !relay || pending.size >= MAX_PENDING) return fail()
    let key = randomInt(0x10000)
    while (pending.has(key)) key = (key + 1) & 0xffff
    const copy = Buffer.from(msg)
    copy.writeUInt16BE(key, 0)
    const timer = setTimeout(() => {
      pending.delete(key)
      fail()
    }, forwardTimeoutMs)
    timer.unref()
    pending.set(key, { to, id, upstream: `${up.host}:${up.port}`, timer })
    relay.send(copy, up.port, up.host, (err) => {
      if (!err) return
      clearTimeout(timer)
      pending.delete(key)
      fail()
    })
  }

  function onQuery(msg: Buffer, from: RemoteInfo): void {
    const table = tables.get(from.address)
    const q = parseQuery(msg)
    if (!table) {
      // Only the networks' routers are served.
      if (q) send(from, encodeAnswer(q, 5 /* REFUSED */, [], 0))
      return
    }
    if (!buckets.take(from.address)) {
      dropped++
      if (now() - droppedLogged > 10_000) {
        droppedLogged = now()
        log.warn({ network: from.address, dropped }, 'dns: a network asks more than its rate; queries dropped')
      }
      return
    }
    if (!q) return send(from, msg.length >= 12 && !(msg.readUInt16BE(2) & 0x8000) ? encodeFormErr(msg) : null)
    const found = q.qclass === CLASS_IN ? lookup(table, q.name) : { ours: false as const }
    if (!found.ours) return forward(msg, q.id, from)
    if (!found.ips.length) return send(from, encodeAnswer(q, RCODE.nxDomain, [], ttl))
    // Our names have A records only: other types are an empty answer, not an error.
    send(from, encodeAnswer(q, RCODE.ok, q.qtype === TYPE_A ? fitting(q, found.ips) : [], ttl))
  }

  function onReply(msg: Buffer, from: RemoteInfo): void {
    if (msg.length < 12) return
    const key = msg.readUInt16BE(0)
    const p = pending.get(key)
    if (!p || p.upstream !== `${from.address}:${from.port}`) return
    clearTimeout(p.timer)
    pending.delete(key)
    const out = Buffer.from(msg)
    out.writeUInt16BE(p.id, 0)
    send(p.to, out)
  }

  async function bind(): Promise<number | null> {
    const s = createSocket('udp4')
    const r = createSocket('udp4')
    try {
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject)
        s.bind(opts.port ?? 0, opts.host, () => resolve())
      })
      await new Promise<void>((resolve, reject) => {
        r.once('error', reject)
        r.bind(0, () => resolve())
      })
    } catch (err) {
      s.close()
      r.close()
      log.warn({ err, host: opts.host }, 'dns: cannot listen yet')
      return null
    }
    s.on('message', onQuery)
    r.on('message', onReply)
    for (const sock of [s, r]) sock.on('error', (err) => log.warn({ err }, 'dns: socket error'))
    server = s
    relay = r
    const port = s.address().port
    log.info({ host: opts.host, port, upstreams: opts.upstreams }, 'dns: answering tenant networks')
    return port
  }

  return {
    /** Which names each network's queries see, keyed by the source address its queries come from. */
    setTables(next: ReadonlyMap<string, NameTable>): void {
      tables = next
      buckets.keep(new Set(next.keys()))
    },
    /** Binds once; the port, or null while the address does not exist yet (tried again next time). */
    async listen(): Promise<number | null> {
      if (server) return server.address().port
      binding ??= bind().finally(() => (binding = null))
      return binding
    },
    close(): void {
      for (const p of pending.values()) clearTimeout(p.timer)
      pending.clear()
      server?.close()
      relay?.close()
      server = relay = null
    },
  }
}
export type DnsResponder = ReturnType<typeof createDnsResponder>
