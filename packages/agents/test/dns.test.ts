import { createSocket } from 'node:dgram'
import { Resolver } from 'node:dns/promises'
import { connect, createServer, type Server } from 'node:net'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { lookup, nameTable } from '../src/network/dns/names'
import { createBuckets, createDnsResponder, fitting, upstreamsOf, type DnsQueryEvent, type DnsResponder } from '../src/network/dns/responder'
import { encodeAnswer, parseQuery, RCODE, udpLimit } from '../src/network/dns/wire'

const endpoints = [
  { ip: '100.64.0.3', mac: '02:a1:64:40:00:03', node: '198.18.0.2', app: 'web', ordinal: 1, ready: true },
  { ip: '100.64.0.2', mac: '02:a1:64:40:00:02', node: '198.18.0.1', app: 'web', ordinal: 0, ready: true },
  { ip: '100.64.0.4', mac: '02:a1:64:40:00:04', node: '198.18.0.3', app: 'DB', ordinal: 0, ready: true },
  // A load-balancing node that joined the network: a member without a name.
  { ip: '100.64.0.5', mac: '02:a1:64:40:00:05', node: '198.18.0.4', app: '', ordinal: 0, ready: true },
]

/** A query as a stub resolver sends it. */
function query(name: string, qtype = 1, id = 0x1234): Buffer {
  const labels = name.split('.').filter(Boolean)
  const q = Buffer.concat([...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])), Buffer.from([0, 0, qtype, 0, 1])])
  const h = Buffer.alloc(12)
  h.writeUInt16BE(id, 0)
  h.writeUInt16BE(0x0100, 2)
  h.writeUInt16BE(1, 4)
  return Buffer.concat([h, q])
}

/** The same with an EDNS OPT record offering `size` bytes over UDP. */
function ednsQuery(name: string, size: number): Buffer {
  const q = query(name)
  q.writeUInt16BE(1, 10)
  return Buffer.concat([q, Buffer.from([0, 0, 41, size >> 8, size & 255, 0, 0, 0, 0, 0, 0])])
}

/** One UDP exchange with a server on 127.0.0.1. */
function udpExchange(port: number, msg: Buffer): Promise<Buffer> {
  return new Promise((resolve) => {
    const s = createSocket('udp4')
    s.on('message', (m) => (s.close(), resolve(m)))
    s.bind(0, '127.0.0.1', () => s.send(msg, port, '127.0.0.1'))
  })
}

/** One TCP exchange (RFC 7766: two-byte length, then the message), several queries pipelined on one connection. */
function tcpExchange(port: number, msgs: Buffer[]): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const c = connect(port, '127.0.0.1')
    let buf = Buffer.alloc(0)
    const out: Buffer[] = []
    c.on('error', reject)
    c.on('data', (d) => {
      buf = Buffer.concat([buf, d])
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        out.push(buf.subarray(2, 2 + buf.readUInt16BE(0)))
        buf = buf.subarray(2 + buf.readUInt16BE(0))
      }
      if (out.length === msgs.length) (c.end(), resolve(out))
    })
    for (const m of msgs) c.write(Buffer.concat([Buffer.from([m.length >> 8, m.length & 255]), m]))
  })
}

/** The A records' addresses of an answer (each 16 bytes, after the question). */
function addressesOf(answer: Buffer): string[] {
  let at = 12
  while (answer[at]) at += answer[at]! + 1
  at += 5 // the root label, type and class
  return Array.from({ length: answer.readUInt16BE(6) }, (_, k) => [...answer.subarray(at + k * 16 + 12, at + k * 16 + 16)].join('.'))
}
const tc = (answer: Buffer) => !!(answer.readUInt16BE(2) & 0x0200)

describe('dns names and wire format', () => {
  const table = nameTable(endpoints)

  it('answers <app> with every instance and <ordinal>.<app> with one, case-insensitively; other names are not ours', () => {
    expect(lookup(table, 'web')).toEqual({ ours: true, ips: ['100.64.0.2', '100.64.0.3'] })
    expect(lookup(table, '1.web')).toEqual({ ours: true, ips: ['100.64.0.3'] })
    expect(lookup(table, 'db')).toEqual({ ours: true, ips: ['100.64.0.4'] })
    expect(lookup(table, '7.web')).toEqual({ ours: true, ips: [] })
    for (const other of ['example.com', 'web.example.com', 'x.1.web', 'api', '', '0.']) expect(lookup(table, other)).toEqual({ ours: false })
    expect([...table.values()].flat().map((e) => e.ip)).not.toContain('100.64.0.5')
  })

  it('answers <app> with its ready instances only, <ordinal>.<app> ready or not', () => {
    const t = nameTable(endpoints.map((e) => (e.ip === '100.64.0.3' || e.app === 'DB' ? { ...e, ready: false } : e)))
    expect(lookup(t, 'web')).toEqual({ ours: true, ips: ['100.64.0.2'] })
    expect(lookup(t, '1.web')).toEqual({ ours: true, ips: ['100.64.0.3'] })
    // No ready instance: still our name (NXDOMAIN), never asked upstream.
    expect(lookup(t, 'db')).toEqual({ ours: true, ips: [] })
    expect(lookup(t, '0.db')).toEqual({ ours: true, ips: ['100.64.0.4'] })
  })

  it('reads one-question queries and writes answers with the question echoed', () => {
    const q = parseQuery(query('Web.'))!
    expect(q).toMatchObject({ id: 0x1234, rd: true, name: 'web', qtype: 1, qclass: 1 })
    const a = encodeAnswer(q, RCODE.ok, ['100.64.0.2'], 5)
    expect(a.readUInt16BE(0)).toBe(0x1234)
    expect(a.readUInt16BE(2) & 0x8000).toBeTruthy()
    expect(a.readUInt16BE(6)).toBe(1)
    expect([...a.subarray(a.length - 4)]).toEqual([100, 64, 0, 2])
    // Responses, truncated and compressed questions are not queries.
    const resp = query('web')
    resp.writeUInt16BE(0x8100, 2)
    expect(parseQuery(resp)).toBeNull()
    expect(parseQuery(query('web').subarray(0, 15))).toBeNull()
    expect(parseQuery(Buffer.concat([query('').subarray(0, 12), Buffer.from([0xc0, 0x0c, 0, 1, 0, 1])]))).toBeNull()
  })

  it('reads the client’s EDNS size: UDP answers fit 512 bytes without it, up to 1232 with it; more records set TC', () => {
    expect(parseQuery(query('web'))!.ednsSize).toBeNull()
    expect(parseQuery(ednsQuery('web', 4096))!.ednsSize).toBe(4096)
    expect(udpLimit({ ednsSize: null })).toBe(512)
    expect(udpLimit({ ednsSize: 4096 })).toBe(1232)
    expect(udpLimit({ ednsSize: 100 })).toBe(512)
    const ips = Array.from({ length: 100 }, (_, k) => `100.64.1.${k + 1}`)
    const q = parseQuery(query('web'))!
    const small = fitting(q, ips, udpLimit(q))
    expect(small.truncated).toBe(true)
    expect(encodeAnswer(q, RCODE.ok, small.ips, 5, true).length).toBeLessThanOrEqual(512)
    expect(encodeAnswer(q, RCODE.ok, fitting(q, ips.slice(0, 3), 512).ips, 5).length).toBe(12 + q.question.length + 48)
    const e = parseQuery(ednsQuery('web', 1232))!
    const big = fitting(e, ips, udpLimit(e))
    const a = encodeAnswer(e, RCODE.ok, big.ips, 5, big.truncated)
    expect(a.length).toBeLessThanOrEqual(1232)
    expect(a.length).toBeGreaterThan(1232 - 16)
    // The OPT record answers the client's (RFC 6891 6.1.1).
    expect(a.readUInt16BE(10)).toBe(1)
    expect(fitting(e, ips, 65_535)).toMatchObject({ truncated: false, ips })
  })

  it('limits each network to its rate, refilled over time, independently of the others', () => {
    let t = 0
    const b = createBuckets({ perSecond: 10, burst: 3 }, () => t)
    expect([1, 2, 3, 4].map(() => b.take('a'))).toEqual([true, true, true, false])
    expect(b.take('b')).toBe(true)
    t = 100
    expect([b.take('a'), b.take('a')]).toEqual([true, false])
  })

  it('takes the IPv4 nameservers of a resolv.conf', () => {
    expect(upstreamsOf('# x\nnameserver 127.0.0.53\nnameserver ::1\n nameserver 192.0.2.1 \nsearch example.com\n')).toEqual(['127.0.0.53', '192.0.2.1'])
  })
})

describe('dns responder', () => {
  let responder: DnsResponder
  let port: number
  let upstream: ReturnType<typeof createSocket>
  let upstreamTcp: Server
  const resolver = () => {
    const r = new Resolver({ timeout: 2000, tries: 1 })
    r.setServers([`127.0.0.1:${port}`])
    return r
  }

  beforeAll(async () => {
    // The node's resolver: answers every name with 192.0.2.7 over UDP and 192.0.2.8 over TCP, on
    // one port. The UDP port the kernel picks may be taken for TCP (seen in CI): then another.
    for (;;) {
      upstream = createSocket('udp4')
      upstream.on('message', (msg, from) => {
        const q = parseQuery(msg)
        if (q) upstream.send(encodeAnswer(q, RCODE.ok, ['192.0.2.7'], 60), from.port, from.address)
      })
      await new Promise<void>((r) => upstream.bind(0, '127.0.0.1', r))
      upstreamTcp = createServer((c) => {
        c.on('error', () => {})
        c.on('data', (d) => {
          const q = parseQuery(d.subarray(2))
          const a = q && encodeAnswer(q, RCODE.ok, ['192.0.2.8'], 60)
          if (a) c.end(Buffer.concat([Buffer.from([a.length >> 8, a.length & 255]), a]))
        })
      })
      const listening = await new Promise<boolean>((r) => {
        upstreamTcp.once('error', () => r(false))
        upstreamTcp.listen(upstream.address().port, '127.0.0.1', () => r(true))
      })
      if (listening) break
      upstream.close()
    }
    responder = createDnsResponder({ host: '127.0.0.1', upstreams: [`127.0.0.1:${upstream.address().port}`], log: pino({ level: 'silent' }) })
    port = (await responder.listen())!
    // Queries from 127.0.0.1 are this network's (in the overlay: a router's transit address).
    responder.setTables(new Map([['127.0.0.1', { network: 'net-127.0.0.1', names: nameTable(endpoints) }]]))
  })
  afterAll(() => {
    responder?.close()
    upstream?.close()
    upstreamTcp?.close()
  })

  it('answers the network’s names, NXDOMAIN for a missing ordinal, nothing for other types', async () => {
    expect((await resolver().resolve4('web')).sort()).toEqual(['100.64.0.2', '100.64.0.3'])
    expect(await resolver().resolve4('0.web')).toEqual(['100.64.0.2'])
    await expect(resolver().resolve4('9.web')).rejects.toMatchObject({ code: 'ENOTFOUND' })
    await expect(resolver().resolve6('web')).rejects.toMatchObject({ code: 'ENODATA' })
  })

  it('relays other names to the node’s resolvers', async () => {
    expect(await resolver().resolve4('example.com')).toEqual(['192.0.2.7'])
  })

  it('refuses queries from addresses that are no network’s router', async () => {
    responder.setTables(new Map())
    try {
      await expect(resolver().resolve4('web')).rejects.toMatchObject({ code: 'EREFUSED' })
    } finally {
      responder.setTables(new Map([['127.0.0.1', { network: 'net-127.0.0.1', names: nameTable(endpoints) }]]))
    }
  })

  it('drops a flooding network’s queries beyond its rate; another network still gets answers', async () => {
    let t = 0
    const limited = createDnsResponder({ host: '127.0.0.1', upstreams: [], log: pino({ level: 'silent' }), rate: { perSecond: 1, burst: 2 }, now: () => t })
    const p = (await limited.listen())!
    limited.setTables(new Map([['127.0.0.1', { network: 'net-127.0.0.1', names: nameTable(endpoints) }], ['127.0.0.2', { network: 'net-127.0.0.2', names: nameTable(endpoints) }]]))
    const ask = (from: string) =>
      new Promise<boolean>((resolve) => {
        const s = createSocket('udp4')
        const timer = setTimeout(() => (s.close(), resolve(false)), 500)
        s.on('message', () => (clearTimeout(timer), s.close(), resolve(true)))
        s.bind(0, from, () => s.send(query('web'), p, '127.0.0.1'))
      })
    try {
      expect([await ask('127.0.0.1'), await ask('127.0.0.1'), await ask('127.0.0.1')]).toEqual([true, true, false])
      expect(await ask('127.0.0.2')).toBe(true)
      t = 1000
      expect(await ask('127.0.0.1')).toBe(true)
    } finally {
      limited.close()
    }
  })

  it('truncates a large app’s UDP answer (TC, 512 bytes or the EDNS size) and answers it whole over TCP', async () => {
    const many = Array.from({ length: 100 }, (_, k) => ({ ...endpoints[0]!, ip: `100.64.1.${k + 1}`, ordinal: k }))
    const all = many.map((e) => e.ip).sort()
    responder.setTables(new Map([['127.0.0.1', { network: 'net-127.0.0.1', names: nameTable(many) }]]))
    try {
      const plain = await udpExchange(port, query('web'))
      expect(tc(plain)).toBe(true)
      expect(plain.length).toBeLessThanOrEqual(512)
      // Clients that cannot retry over TCP still get as many as fit, from a random start.
      expect(addressesOf(plain).length).toBe(Math.floor((512 - 12 - 5) / 16))
      const edns = await udpExchange(port, ednsQuery('web', 4096))
      expect(tc(edns)).toBe(true)
      expect(edns.length).toBeLessThanOrEqual(1232)
      const [whole, one] = await tcpExchange(port, [query('web'), query('7.web', 1, 0x4321)])
      expect(tc(whole!)).toBe(false)
      expect(addressesOf(whole!).sort()).toEqual(all)
      expect(one!.readUInt16BE(0)).toBe(0x4321)
      expect(addressesOf(one!)).toEqual(['100.64.1.8'])
      // A stub resolver retries over TCP on TC (c-ares here, glibc in the namespace test).
      expect((await resolver().resolve4('web')).sort()).toEqual(all)
    } finally {
      responder.setTables(new Map([['127.0.0.1', { network: 'net-127.0.0.1', names: nameTable(endpoints) }]]))
    }
  })

  it('relays other names over TCP to the node’s resolvers when asked over TCP', async () => {
    const [a] = await tcpExchange(port, [query('example.com', 1, 0x0777)])
    expect(a!.readUInt16BE(0)).toBe(0x0777)
    expect(addressesOf(a!)).toEqual(['192.0.2.8'])
  })

  it('tells what became of each query, by network, type and transport', async () => {
    const events: DnsQueryEvent[] = []
    let t = 0
    const r = createDnsResponder({ host: '127.0.0.1', upstreams: [`127.0.0.1:${upstream.address().port}`], log: pino({ level: 'silent' }), rate: { perSecond: 1, burst: 5 }, now: () => t, observe: (e) => events.push(e) })
    const p = (await r.listen())!
    r.setTables(new Map([['127.0.0.1', { network: 'n1', names: nameTable(endpoints) }]]))
    try {
      await udpExchange(p, query('web'))
      await udpExchange(p, query('9.web', 28))
      await udpExchange(p, query('example.com'))
      await tcpExchange(p, [query('db', 28)])
      await udpExchange(p, query('web'))
      // Over the rate: no answer, but counted.
      const s = createSocket('udp4')
      await new Promise<void>((done) => s.bind(0, '127.0.0.1', () => s.send(query('web'), p, '127.0.0.1', () => done())))
      await expect.poll(() => events.length).toBe(6)
      s.close()
      r.setTables(new Map())
      await udpExchange(p, query('web'))
      expect(events.map((e) => [e.network, e.type, e.transport, e.result])).toEqual([
        ['n1', 'A', 'udp', 'answered'],
        ['n1', 'AAAA', 'udp', 'nxdomain'],
        ['n1', 'A', 'udp', 'relayed'],
        ['n1', 'AAAA', 'tcp', 'answered'],
        ['n1', 'A', 'udp', 'answered'],
        ['n1', 'A', 'udp', 'dropped'],
        ['unknown', 'A', 'udp', 'refused'],
      ])
      expect(events.every((e) => e.seconds >= 0 && e.seconds < 60)).toBe(true)
    } finally {
      r.close()
    }
  })
})
