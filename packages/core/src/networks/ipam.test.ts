import { describe, expect, it } from 'vitest'
import {
  allocateIp,
  allocateVxlanId,
  assignableCount,
  cidrProblem,
  formatCidr,
  formatIp,
  gatewayMacOf,
  gatewayOf,
  macOf,
  nextDefaultCidr,
  overlaps,
  parseCidr,
  parseIp,
  VXLAN_ID_MAX,
  VXLAN_ID_MIN,
} from './ipam'

const cidr = (s: string) => parseCidr(s)!

describe('ipam', () => {
  it('parses and formats addresses and CIDRs, refusing junk and set host bits', () => {
    expect(formatIp(parseIp('100.64.1.2')!)).toBe('100.64.1.2')
    expect(parseIp('255.255.255.255')).toBe(0xffffffff)
    for (const bad of ['1.2.3', '1.2.3.256', '01.2.3.4', 'a.b.c.d', '1.2.3.4 ']) expect(parseIp(bad)).toBeNull()
    expect(formatCidr(cidr('100.64.0.0/10'))).toBe('100.64.0.0/10')
    for (const bad of ['100.64.0.1/24', '100.64.0.0', '100.64.0.0/33', '100.64.0.0/24/1', '100.64.0.0/x']) expect(parseCidr(bad)).toBeNull()
  })

  it('allocates the lowest free host, never the network, gateway or broadcast address', () => {
    const c = cidr('100.64.0.0/29') // .0 network, .1 gateway, .7 broadcast: .2-.6 assignable
    expect(formatIp(gatewayOf(c))).toBe('100.64.0.1')
    expect(assignableCount(c)).toBe(5)
    const used = new Set<number>()
    const got: string[] = []
    for (let k = 0; k < 5; k++) {
      const ip = allocateIp(c, used)!
      used.add(ip)
      got.push(formatIp(ip))
    }
    expect(got).toEqual(['100.64.0.2', '100.64.0.3', '100.64.0.4', '100.64.0.5', '100.64.0.6'])
    expect(allocateIp(c, used)).toBeNull()
    // A released address is handed out again first.
    used.delete(parseIp('100.64.0.3')!)
    expect(formatIp(allocateIp(c, used)!)).toBe('100.64.0.3')
  })

  it('derives stable, locally administered MACs from the IP and the VXLAN id', () => {
    expect(macOf(parseIp('100.64.0.2')!)).toBe('02:a1:64:40:00:02')
    expect(macOf(parseIp('100.64.0.2')!)).toBe(macOf(parseIp('100.64.0.2')!))
    expect(gatewayMacOf(4096)).toBe('02:a0:00:10:00:01')
    // bit 1 of the first octet set (local), bit 0 clear (unicast)
    expect(parseInt(macOf(1).slice(0, 2), 16) & 3).toBe(2)
  })

  it('hands out VXLAN ids from its range, lowest first', () => {
    expect(allocateVxlanId(new Set())).toBe(VXLAN_ID_MIN)
    expect(allocateVxlanId(new Set([VXLAN_ID_MIN, VXLAN_ID_MIN + 2]))).toBe(VXLAN_ID_MIN + 1)
    const all = new Set(Array.from({ length: VXLAN_ID_MAX - VXLAN_ID_MIN + 1 }, (_, k) => VXLAN_ID_MIN + k))
    expect(allocateVxlanId(all)).toBeNull()
  })

  it('gives default networks distinct blocks of the pool, then overlaps when it is exhausted', () => {
    const pool = cidr('100.64.0.0/22')
    const used: ReturnType<typeof cidr>[] = []
    const seen: string[] = []
    for (let k = 0; k < 4; k++) {
      const c = nextDefaultCidr(pool, 24, used)
      used.push(c)
      seen.push(formatCidr(c))
    }
    expect(seen).toEqual(['100.64.0.0/24', '100.64.1.0/24', '100.64.2.0/24', '100.64.3.0/24'])
    expect(overlaps(nextDefaultCidr(pool, 24, used), pool)).toBe(true)
    // A user network in the way is skipped.
    expect(formatCidr(nextDefaultCidr(pool, 24, [cidr('100.64.0.0/23')]))).toBe('100.64.2.0/24')
    expect(() => nextDefaultCidr(pool, 20, [])).toThrow(/larger than the pool/)
  })

  it('accepts private tenant CIDRs of a sensible size only', () => {
    expect(cidrProblem('100.64.8.0/24')).toBeNull()
    expect(cidrProblem('10.1.0.0/16')).toBeNull()
    expect(cidrProblem('8.8.8.0/24')).toMatch(/must lie in/)
    expect(cidrProblem('100.64.0.0/12')).toMatch(/between \/16 and \/29/)
    expect(cidrProblem('100.64.0.0/30')).toMatch(/between/)
    expect(cidrProblem('100.64.0.1/24')).toMatch(/host bits/)
  })
})
