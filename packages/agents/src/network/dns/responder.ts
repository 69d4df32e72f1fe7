/**
 * The node's DNS responder for tenant networks: one UDP socket and one TCP listener (RFC 7766:
 * length-prefixed messages, for answers too large for UDP) in the agent, on the node side of
 * every transit link (169.254.0.1), on the same port. Each router sends its instances' queries
 * to the gateway address here (nftables DNAT, masqueraded to the router's transit address), so
 * the source address says which network asks; the answer comes from that network's names only
 * (names.ts). Other names are relayed to the node's own resolvers (over the transport they were
 * asked on), so instances still reach the internet by name. In the agent rather than a process
 * per router: the names are in the agent's memory already, and one socket serves every network
 * of the node.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram'
import { randomInt } from 'node:crypto'
import { connect, createServer, type Server, type Socket as TcpSocket } from 'node:net'
import type { Logger } from 'pino'
import type { NameTable } from './names'
import { lookup } from './names'
import { A_RECORD_BYTES, answerSize, CLASS_IN, encodeAnswer, encodeFormErr, parseQuery, RCODE, TYPE_A, udpLimit, type Query } from './wire'

/** A network's names, keyed in setTables by the source address its queries come from. */
export interface NetworkNames {
  /** The network's id (metrics' label). */
  network: string
  names: NameTable
}

export type DnsTransport = 'udp' | 'tcp'
/** What became of a query: answered from the names (records or an empty answer), NXDOMAIN, relayed upstream (or SERVFAIL when that failed), REFUSED (not a network of ours), dropped by the rate limit, or FORMERR. */
export type DnsResult = 'answered' | 'nxdomain' | 'relayed' | 'servfail' | 'refused' | 'dropped' | 'formerr'
export interface DnsQueryEvent {
  /** The network's id; "unknown" for a source that is no network's router. */
  network: string
  /** The question's type (A, AAAA, …, "other"), "unknown" when the query could not be read. */
  type: string
  transport: DnsTransport
  result: DnsResult
  /** From the query's arrival to its answer (relayed ones included); 0 for dropped ones. */
  seconds: number
}

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
  /** Told of every query once its fate is known (metrics). */
  observe?: (e: DnsQueryEvent) => void
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
/** Open TCP connections at most (all networks); more are closed at once. */
const MAX_TCP = 256
/** A TCP connection idle this long is closed (RFC 7766 6.2.3 leaves it to the server). */
const TCP_IDLE_MS = 10_000
const TCP_MAX = 65_535

const TYPE_NAMES: Record<number, string> = { 1: 'A', 2: 'NS', 5: 'CNAME', 6: 'SOA', 12: 'PTR', 15: 'MX', 16: 'TXT', 28: 'AAAA', 33: 'SRV', 64: 'SVCB', 65: 'HTTPS', 255: 'ANY' }
export const typeName = (qtype: number) => TYPE_NAMES[qtype] ?? 'other'

/**
 * As many records as fit `limit` bytes, from a random start so a large app's instances all get
 * their share of clients that cannot retry over TCP; `truncated` (the TC bit) when some were left out.
 */
export function fitting(q: Pick<Query, 'question' | 'ednsSize'>, ips: readonly string[], limit: number): { ips: string[]; truncated: boolean } {
  const max = Math.floor((limit - answerSize(q, 0)) / A_RECORD_BYTES)
  if (ips.length <= max) return { ips: [...ips], truncated: false }
  const start = randomInt(ips.length)
  return { ips: Array.from({ length: max }, (_, k) => ips[(start + k) % ips.length]!), truncated: true }
}

/** Who asked: the source address (which network) and how to answer it. */
interface Asker {
  address: string
  transport: DnsTransport
  reply(msg: Buffer): void
}

const frame = (msg: Buffer) => {
  const len = Buffer.alloc(2)
  len.writeUInt16BE(msg.length)
  return Buffer.concat([len, msg])
}

/** Splits a TCP stream into its length-prefixed messages as they complete. */
function framer(onMessage: (msg: Buffer) => void) {
  let buf: Buffer = Buffer.alloc(0)
  return (chunk: Buffer) => {
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk
    while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
      const len = buf.readUInt16BE(0)
      onMessage(Buffer.from(buf.subarray(2, 2 + len)))
      buf = buf.subarray(2 + len)
    }
  }
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
  let tables: ReadonlyMap<string, NetworkNames> = new Map()
  let server: Socket | null = null
  let tcp: Server | null = null
  const conns = new Set<TcpSocket>()
  let relay: Socket | null = null
  let binding: Promise<number | null> | null = null
  let next = 0
  const now = opts.now ?? Date.now
  const buckets = createBuckets(opts.rate ?? { perSecond: 200, burst: 400 }, now)
  let dropped = 0
  let droppedLogged = 0
  /** Queries relayed and not answered yet: UDP ones by the id they went out with, plus TCP ones. */
  const pending = new Map<number, { to: Asker; id: number; upstream: string; timer: NodeJS.Timeout; done(result: DnsResult): void }>()
  let tcpRelays = 0
  const nextUpstream = () => upstreams[next++ % Math.max(1, upstreams.length)]

  function forwardUdp(msg: Buffer, q: Query, to: Asker, done: (r: DnsResult) => void): void {
    const fail = () => (to.reply(encodeAnswer(q, RCODE.servFail, [], 0)), done('servfail'))
    const up = nextUpstream()
    if (!up || !relay || pending.size + tcpRelays >= MAX_PENDING) return fail()
    let key = randomInt(0x10000)
    while (pending.has(key)) key = (key + 1) & 0xffff
    const copy = Buffer.from(msg)
    copy.writeUInt16BE(key, 0)
    const timer = setTimeout(() => {
      pending.delete(key)
      fail()
    }, forwardTimeoutMs)
    timer.unref()
    pending.set(key, { to, id: q.id, upstream: `${up.host}:${up.port}`, timer, done })
    relay.send(copy, up.port, up.host, (err) => {
      if (!err) return
      clearTimeout(timer)
      pending.delete(key)
      fail()
    })
  }

  /** A TCP query goes upstream over TCP too: the answer may be larger than UDP carries. */
  function forwardTcp(msg: Buffer, q: Query, to: Asker, done: (r: DnsResult) => void): void {
    const up = nextUpstream()
    let settled = false
    let c: TcpSocket | null = null
    const finish = (answer: Buffer | null) => {
      if (settled) return
      settled = true
      tcpRelays--
      c?.destroy()
      to.reply(answer ?? encodeAnswer(q, RCODE.servFail, [], 0))
      done(answer ? 'relayed' : 'servfail')
    }
    tcpRelays++
    if (!up || pending.size + tcpRelays > MAX_PENDING) return finish(null)
    c = connect(up.port, up.host, () => c?.write(frame(msg)))
    c.setTimeout(forwardTimeoutMs, () => finish(null))
    c.on('data', framer((answer) => finish(answer)))
    c.on('error', () => finish(null))
    c.on('close', () => finish(null))
  }

  function onQuery(msg: Buffer, from: Asker): void {
    const started = process.hrtime.bigint()
    const q = parseQuery(msg)
    const known = tables.get(from.address)
    const done = (result: DnsResult) =>
      opts.observe?.({ network: known?.network ?? 'unknown', type: q ? typeName(q.qtype) : 'unknown', transport: from.transport, result, seconds: Number(process.hrtime.bigint() - started) / 1e9 })
    if (!known) {
      // Only the networks' routers are served.
      if (q) from.reply(encodeAnswer(q, 5 /* REFUSED */, [], 0))
      return done('refused')
    }
    if (!buckets.take(from.address)) {
      dropped++
      if (now() - droppedLogged > 10_000) {
        droppedLogged = now()
        log.warn({ network: known.network, dropped }, 'dns: a network asks more than its rate; queries dropped')
      }
      return done('dropped')
    }
    if (!q) {
      const formErr = msg.length >= 12 && !(msg.readUInt16BE(2) & 0x8000) ? encodeFormErr(msg) : null
      if (formErr) from.reply(formErr)
      return done(formErr ? 'formerr' : 'dropped')
    }
    const found = q.qclass === CLASS_IN ? lookup(known.names, q.name) : { ours: false as const }
    if (!found.ours) return (from.transport === 'tcp' ? forwardTcp : forwardUdp)(msg, q, from, done)
    if (!found.ips.length) {
      from.reply(encodeAnswer(q, RCODE.nxDomain, [], ttl))
      return done('nxdomain')
    }
    // Our names have A records only: other types are an empty answer, not an error.
    const fit = fitting(q, q.qtype === TYPE_A ? found.ips : [], from.transport === 'tcp' ? TCP_MAX : udpLimit(q))
    from.reply(encodeAnswer(q, RCODE.ok, fit.ips, ttl, fit.truncated))
    done('answered')
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
    p.to.reply(out)
    p.done('relayed')
  }

  function onDatagram(msg: Buffer, from: RemoteInfo): void {
    onQuery(msg, { address: from.address, transport: 'udp', reply: (m) => server?.send(m, from.port, from.address) })
  }

  function onConnection(sock: TcpSocket): void {
    sock.on('error', () => {})
    if (conns.size >= MAX_TCP) return void sock.destroy()
    conns.add(sock)
    sock.on('close', () => conns.delete(sock))
    sock.setTimeout(TCP_IDLE_MS, () => sock.destroy())
    const asker: Asker = { address: sock.remoteAddress ?? '', transport: 'tcp', reply: (m) => void (!sock.destroyed && sock.write(frame(m))) }
    sock.on('data', framer((msg) => onQuery(msg, asker)))
  }

  /** The UDP socket and TCP listener on one port (any free one unless opts.port): the rules send both protocols there. */
  async function listenBoth(): Promise<{ udp: Socket; tcp: Server }> {
    for (let attempt = 1; ; attempt++) {
      const s = createSocket('udp4')
      const t = createServer(onConnection)
      try {
        await new Promise<void>((resolve, reject) => {
          s.once('error', reject)
          s.bind(opts.port ?? 0, opts.host, () => resolve())
        })
        await new Promise<void>((resolve, reject) => {
          t.once('error', reject)
          t.listen(s.address().port, opts.host, () => resolve())
        })
        return { udp: s, tcp: t }
      } catch (err) {
        s.close()
        t.close()
        // The free UDP port may be taken for TCP: another one.
        if (opts.port || attempt >= 5 || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err
      }
    }
  }

  async function bind(): Promise<number | null> {
    const r = createSocket('udp4')
    let both: { udp: Socket; tcp: Server }
    try {
      both = await listenBoth()
      await new Promise<void>((resolve, reject) => {
        r.once('error', reject)
        r.bind(0, () => resolve())
      })
    } catch (err) {
      r.close()
      log.warn({ err, host: opts.host }, 'dns: cannot listen yet')
      return null
    }
    both.udp.on('message', onDatagram)
    r.on('message', onReply)
    for (const sock of [both.udp, r, both.tcp]) sock.on('error', (err) => log.warn({ err }, 'dns: socket error'))
    server = both.udp
    tcp = both.tcp
    relay = r
    const port = server.address().port
    log.info({ host: opts.host, port, upstreams: opts.upstreams }, 'dns: answering tenant networks (UDP and TCP)')
    return port
  }

  return {
    /** Which names each network's queries see, keyed by the source address its queries come from. */
    setTables(next: ReadonlyMap<string, NetworkNames>): void {
      tables = next
      buckets.keep(new Set(next.keys()))
    },
    /** Binds once; the port (UDP and TCP), or null while the address does not exist yet (tried again next time). */
    async listen(): Promise<number | null> {
      if (server) return server.address().port
      binding ??= bind().finally(() => (binding = null))
      return binding
    },
    close(): void {
      for (const p of pending.values()) clearTimeout(p.timer)
      pending.clear()
      for (const c of conns) c.destroy()
      conns.clear()
      server?.close()
      tcp?.close()
      relay?.close()
      server = relay = null
      tcp = null
    },
  }
}
export type DnsResponder = ReturnType<typeof createDnsResponder>
