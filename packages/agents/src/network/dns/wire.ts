/**
 * The few bits of the DNS wire format (RFC 1035) the responder needs, pure: read a standard
 * query with one question, write an answer with A records (or none) and an error code.
 * Anything else (responses, other opcodes, several questions, compressed questions) is not a
 * query we parse: the caller drops it or forwards it untouched.
 */

export const TYPE_A = 1
export const CLASS_IN = 1
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
  return { id: msg.readUInt16BE(0), rd: !!(flags & 0x0100), name: labels.join('.'), qtype, qclass, question: msg.subarray(12, at + 4) }
}

/** The answer to a query: authoritative, recursion available, the question echoed, A records for `ips`. */
export function encodeAnswer(q: Query, rcode: number, ips: readonly string[], ttl: number): Buffer {
  const header = Buffer.alloc(12)
  header.writeUInt16BE(q.id, 0)
  header.writeUInt16BE(0x8000 | 0x0400 | (q.rd ? 0x0100 : 0) | 0x0080 | (rcode & 0xf), 2)
  header.writeUInt16BE(1, 4)
  header.writeUInt16BE(ips.length, 6)
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
  return Buffer.concat([header, q.question, ...answers])
}

/** FORMERR for a message that looked like a query but could not be read (id kept when there is one). */
export function encodeFormErr(msg: Buffer): Buffer | null {
  if (msg.length < 2) return null
  const out = Buffer.alloc(12)
  out.writeUInt16BE(msg.readUInt16BE(0), 0)
  out.writeUInt16BE(0x8000 | RCODE.formErr, 2)
  return out
}
