/**
 * The few bits of the DNS wire format (RFC 1035) the responder needs, pure: read a standard
 * query with one question (and the client's EDNS payload size, RFC 6891), write an answer with
 * A records (or none), an error code and the TC bit. Anything else (responses, other opcodes,
 * several questions, compressed questions) is not a query we parse: the caller drops it or
 * forwards it untouched.
 */

export const TYPE_A = 1
export const TYPE_OPT = 41
export const CLASS_IN = 1
/** A UDP answer's size without EDNS (RFC 1035 4.2.1); larger ones are truncated (TC) and asked again over TCP. */
export const UDP_PLAIN_MAX = 512
/** What we offer over UDP with EDNS: the DNS flag day's 1232 bytes, which no path fragments. */
export const UDP_EDNS_MAX = 1232
/** Bytes of an A record whose name points at the question's. */
export const A_RECORD_BYTES = 16
/** Bytes of the OPT record we add when the query had one. */
export const OPT_RECORD_BYTES = 11
export const RCODE = { ok: 0, formErr: 1, servFail: 2, nxDomain: 3 } as const

export interface Query {
  id: number
  /** Recursion desired, echoed in the answer. */
  rd: boolean
  /** Lowercase, without the trailing dot ("" for the root). */
  name: string
  qtype: number
  qclass: number
  /** The question section as sent, copied into the answer. */
  question: Buffer
  /** The client's EDNS UDP payload size; null: the query had no OPT record (512 bytes). */
  ednsSize: number | null
}

/** A standard query (QR=0, opcode 0) with exactly one question; null for anything else. */
export function parseQuery(msg: Buffer): Query | null {
  if (msg.length < 12 || msg.length > 4096) return null
  const flags = msg.readUInt16BE(2)
  if (flags & 0x8000 || (flags >> 11) & 0xf) return null
  if (msg.readUInt16BE(4) !== 1) return null
  const labels: string[] = []
  let at = 12
  for (;;) {
    const len = msg[at]
    if (len === undefined || len > 63) return null // compression pointers and reserved label types
    at += 1
    if (len === 0) break
    if (at + len > msg.length) return null
    labels.push(msg.toString('latin1', at, at + len).toLowerCase())
    at += len
    if (at - 12 > 255) return null
  }
  if (at + 4 > msg.length) return null
  const qtype = msg.readUInt16BE(at)
  const qclass = msg.readUInt16BE(at + 2)
  return { id: msg.readUInt16BE(0), rd: !!(flags & 0x0100), name: labels.join('.'), qtype, qclass, question: msg.subarray(12, at + 4), ednsSize: ednsSizeOf(msg, at + 4) }
}

/** The payload size of an OPT record (root name, type 41, class = size) right after the question, when it is the only additional record. */
function ednsSizeOf(msg: Buffer, at: number): number | null {
  if (msg.readUInt16BE(6) || msg.readUInt16BE(8) || msg.readUInt16BE(10) !== 1) return null
  if (at + 11 > msg.length || msg[at] !== 0 || msg.readUInt16BE(at + 1) !== TYPE_OPT) return null
  return msg.readUInt16BE(at + 3)
}

/** The largest answer a client takes over UDP: 512 bytes, or its EDNS size up to ours. */
export function udpLimit(q: Pick<Query, 'ednsSize'>): number {
  return q.ednsSize === null ? UDP_PLAIN_MAX : Math.max(UDP_PLAIN_MAX, Math.min(q.ednsSize, UDP_EDNS_MAX))
}

/** Bytes of an answer to `q` with `records` A records. */
export function answerSize(q: Pick<Query, 'question' | 'ednsSize'>, records: number): number {
  return 12 + q.question.length + records * A_RECORD_BYTES + (q.ednsSize === null ? 0 : OPT_RECORD_BYTES)
}

/**
 * The answer to a query: authoritative, recursion available, the question echoed, A records
 * for `ips`, TC when `truncated` (more records than fit), and an OPT record when the query had one.
 */
export function encodeAnswer(q: Query, rcode: number, ips: readonly string[], ttl: number, truncated = false): Buffer {
  const header = Buffer.alloc(12)
  header.writeUInt16BE(q.id, 0)
  header.writeUInt16BE(0x8000 | 0x0400 | (truncated ? 0x0200 : 0) | (q.rd ? 0x0100 : 0) | 0x0080 | (rcode & 0xf), 2)
  header.writeUInt16BE(1, 4)
  header.writeUInt16BE(ips.length, 6)
  header.writeUInt16BE(q.ednsSize === null ? 0 : 1, 10)
  const answers = ips.map((ip) => {
    const rr = Buffer.alloc(16)
    rr.writeUInt16BE(0xc00c, 0) // the name: a pointer to the question's
    rr.writeUInt16BE(TYPE_A, 2)
    rr.writeUInt16BE(CLASS_IN, 4)
    rr.writeUInt32BE(ttl, 6)
    rr.writeUInt16BE(4, 10)
    ip.split('.').forEach((o, k) => rr.writeUInt8(Number(o), 12 + k))
    return rr
  })
  const opt = Buffer.alloc(q.ednsSize === null ? 0 : OPT_RECORD_BYTES)
  if (opt.length) {
    opt.writeUInt16BE(TYPE_OPT, 1)
    opt.writeUInt16BE(UDP_EDNS_MAX, 3)
  }
  return Buffer.concat([header, q.question, ...answers, opt])
}

/** FORMERR for a message that looked like a query but could not be read (id kept when there is one). */
export function encodeFormErr(msg: Buffer): Buffer | null {
  if (msg.length < 2) return null
  const out = Buffer.alloc(12)
  out.writeUInt16BE(msg.readUInt16BE(0), 0)
  out.writeUInt16BE(0x8000 | RCODE.formErr, 2)
  return out
}
