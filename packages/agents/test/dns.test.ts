import { createSocket } from 'node:dgram'
import { Resolver } from 'node:dns/promises'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { lookup, nameTable } from '../src/network/dns/names'
import { createBuckets, createDnsResponder, upstreamsOf, type DnsResponder } from '../src/network/dns/responder'
import { encodeAnswer, parseQuery, RCODE } from '../src/network/dns/wire'

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
  const resolver = () => {
    const r = new Resolver({ timeout: 2000, tries: 1 })
    r.setServers([`127.0.0.1:${port}`])
    return r
  }

  beforeAll(async () => {
    // The node's resolver: answers every name with 192.0.2.7.
    upstream = createSocket('udp4')
    upstream.on('message', (msg, from) => {
      const q = parseQuery(msg)
      if (q) upstream.send(encodeAnswer(q, RCODE.ok, ['192.0.2.7'], 60), from.port, from.address)
    })
    await new Promise<void>((r) => upstream.bind(0, '127.0.0.1', r))
    responder = createDnsResponder({ host: '127.0.0.1', upstreams: [`127.0.0.1:${upstream.address().port}`], log: pino({ level: 'silent' }) })
    port = (await responder.listen())!
    // Queries from 127.0.0.1 are this network's (in the overlay: a router's transit address).
    responder.setTables(new Map([['127.0.0.1', nameTable(endpoints)]]))
  })
  afterAll(() => {
    responder?.close()
    upstream?.close()
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
      responder.setTables(new Map([['127.0.0.1', nameTable(endpoints)]]))
    }
  })

  it('drops a flooding network’s queries beyond its rate; another network still gets answers', async () => {
    let t = 0
    const limited = createDnsResponder({ host: '127.0.0.1', upstreams: [], log: pino({ level: 'silent' }), rate: { perSecond: 1, burst: 2 }, now: () => t })
    const p = (await limited.listen())!
    limited.setTables(new Map([['127.0.0.1', nameTable(endpoints)], ['127.0.0.2', nameTable(endpoints)]]))
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

  it('fits large apps into a 512-byte answer', async () => {
    const many = Array.from({ length: 100 }, (_, k) => ({ ...endpoints[0]!, ip: `100.64.1.${k + 1}`, ordinal: k }))
    responder.setTables(new Map([['127.0.0.1', nameTable(many)]]))
    try {
      const ips = await resolver().resolve4('web')
      expect(ips.length).toBeGreaterThan(20)
      expect(ips.length).toBeLessThan(32)
    } finally {
      responder.setTables(new Map([['127.0.0.1', nameTable(endpoints)]]))
    }
  })
})
