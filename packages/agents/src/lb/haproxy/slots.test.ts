import { describe, expect, it } from 'vitest'
import type { TDesiredLb, TLbServer } from '@alveary/core/protocol'
import { backendId, FREE_SLOT, render } from './config'
import { assign, emptyAssignment, runtimeCommands } from './slots'

const LB = 'c0c0c0c0-c0c0-4c0c-8c0c-c0c0c0c0c0c0'
const NET = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa'
const id = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`
const onNet = (n: number, ip: string): TLbServer => ({ id: id(n), address: ip, port: 8080, weight: 1, state: 'ready', networkId: NET })
const onHost = (n: number, port: number): TLbServer => ({ id: id(n), address: '198.18.0.2', port, weight: 1, state: 'ready' })
const lbOf = (servers: TLbServer[]): TDesiredLb => ({
  id: LB,
  name: 'front',
  algorithm: 'roundrobin',
  stickySeconds: null,
  drainSeconds: 0,
  listeners: [{ port: 30080, protocol: 'http', routes: [{ host: null, pathPrefix: null, backend: 'l30080_r0' }] }],
  backends: [{ name: 'l30080_r0', servers }],
})
const B = backendId(LB, 'l30080_r0')
const nsOf = (s: TLbServer) => (s.networkId ? 't1-l4097' : null)
const all = () => true

describe('slots grouped by namespace', () => {
  it('servers on a tenant network take slots of its namespace; host ones the node’s', () => {
    const { next, slotNs } = assign(emptyAssignment(), [lbOf([onNet(1, '100.64.0.2'), onHost(2, 31000)])], nsOf, all)
    expect(slotNs.get(B)!.filter((n) => n === 't1-l4097')).toHaveLength(8)
    expect(slotNs.get(B)!.filter((n) => n === null)).toHaveLength(8)
    const slots = next.backends.get(B)!.slots
    expect(slots.find((s) => s.address === '100.64.0.2')!.ns).toBe('t1-l4097')
    expect(slots.find((s) => s.port === 31000)!.ns).toBeNull()
    expect(render([lbOf([])], next.backends, { adminSocket: '/a', idleSocket: '/i', cookieKey: 'k', maxconn: 10, netnsIds: new Map([['t1-l4097', '5:77']]) })).toContain(
      'server s0 100.64.0.2:8080 weight 1 namespace t1-l4097',
    )
  })

  it('membership changes within a group are runtime commands, no new structure', () => {
    const a = assign(emptyAssignment(), [lbOf([onNet(1, '100.64.0.2')])], nsOf, all)
    const b = assign(a.next, [lbOf([onNet(1, '100.64.0.2'), onNet(2, '100.64.0.3')])], nsOf, all)
    expect(b.slotNs).toEqual(a.slotNs)
    expect(runtimeCommands(a.next, b.next)).toEqual([`set server ${B}/s1 addr 100.64.0.3 port 8080`, `set server ${B}/s1 weight 1`, `set server ${B}/s1 state ready`])
    const c = assign(b.next, [lbOf([{ ...onNet(2, '100.64.0.3'), state: 'drain' }])], nsOf, all)
    expect(runtimeCommands(b.next, c.next)).toEqual([`set server ${B}/s0 state maint`, `set server ${B}/s0 addr 127.0.0.1 port 1`, `set server ${B}/s0 weight 1`, `set server ${B}/s1 state drain`])
  })

  it('an instance whose namespace changed moves to a slot of its new group', () => {
    const a = assign(emptyAssignment(), [lbOf([onHost(1, 31000)])], nsOf, all)
    const b = assign(a.next, [lbOf([onNet(1, '100.64.0.2')])], nsOf, all)
    expect(b.next.members.get(B)!.indexOf(id(1))).toBe(8)
    expect(b.next.backends.get(B)!.slots[0]).toEqual(FREE_SLOT)
  })

  it('slots of a namespace that no longer exists are dropped (HAProxy could not load them)', () => {
    const a = assign(emptyAssignment(), [lbOf([onNet(1, '100.64.0.2'), onHost(2, 31000)])], nsOf, all)
    const b = assign(a.next, [lbOf([onHost(2, 31000)])], nsOf, (ns) => ns !== 't1-l4097')
    expect(b.slotNs.get(B)).toEqual(Array(8).fill(null))
    expect(b.next.members.get(B)![0]).toBe(id(2))
  })
})
