import { describe, expect, it } from 'vitest'
import { ownerOf } from '../src/network/isolated-pool'
import { inPool, pickAddress, renderActions, renderElements, renderIsolatedTable, renderTableChange } from '../src/network/isolated-plan'
import { overlayNames } from '../src/network/names'

const id = '0b9c4f3e-8a51-4d6e-9f0a-1c2d3e4f5a6b'

describe('isolated namespaces: decisions', () => {
  it('gives an instance the same address every time, the next free one when taken, never a .0 or .255', () => {
    const a = pickAddress(id, new Set())
    expect(inPool(a)).toBe(true)
    expect(pickAddress(id, new Set())).toBe(a)
    const b = pickAddress(id, new Set([a]))
    expect(b).not.toBe(a)
    expect(inPool(b)).toBe(true)
    for (let i = 0; i < 300; i++) expect(pickAddress(`${i}`, new Set())).not.toMatch(/\.(0|255)$/)
    // Below the pool: the overlay's transit addresses and the metadata address.
    for (const ip of ['169.254.0.1', '169.254.16.1', '169.254.168.255', '169.254.169.254', '10.0.0.1']) expect(inPool(ip)).toBe(false)
  })

  it('forwards published ports to the instances, keeps instances apart and away from the node', () => {
    const names = overlayNames('ab')
    const t = renderIsolatedTable(names)
    expect(t).toContain('table inet alveary_ab_s {')
    // From outside (prerouting) and from the node itself (output), through the map of ports.
    expect(t.match(/fib daddr type local dnat ip to tcp dport map @ports/g)).toHaveLength(2)
    expect(t).toContain('oifname "abs*" fib saddr type local masquerade')
    expect(t).toContain('iifname "abs*" oifname "abs*" ct status dnat accept')
    expect(t).toContain('iifname "abs*" oifname "abs*" drop')
    expect(t).toContain('iifname "abs*" counter name to_node drop')
    // Connections still headed to an instance that has gone are reset (unless its address leads into a veth again).
    expect(t.match(/ip daddr @gone meta oifkind != "veth" meta l4proto tcp reject with tcp reset/g)).toHaveLength(2)
    const e = renderElements(names, [
      { hostPort: 31002, ip: '169.254.170.9' },
      { hostPort: 31001, ip: '169.254.171.3' },
    ])
    // Replaced whole, sorted by port.
    expect(e).toBe(['flush map inet alveary_ab_s ports', 'add element inet alveary_ab_s ports { 31001 : 169.254.171.3, 31002 : 169.254.170.9 }', 'flush set inet alveary_ab_s gone'].join('\n'))
    // A port twice (handed from a stopping instance to a new one): the first given wins (nft refuses a key twice).
    expect(renderElements(names, [{ hostPort: 31001, ip: '169.254.170.1' }, { hostPort: 31001, ip: '169.254.170.2' }])).toContain('ports { 31001 : 169.254.170.1 }')
    expect(renderElements(names, [], ['169.254.170.9', '169.254.170.9'])).toContain('add element inet alveary_ab_s gone { 169.254.170.9 }')
    expect(renderElements(names, [])).not.toContain('add element')
  })

  it('makes the table once and then changes only its elements (a start re-makes no chain), again on a full pass or after a failure', () => {
    const names = overlayNames('ab')
    const a = renderElements(names, [{ hostPort: 31001, ip: '169.254.170.1' }])
    const b = renderElements(names, [{ hostPort: 31002, ip: '169.254.170.2' }])
    const made = renderTableChange(names, a, null, false)!
    expect(made.startsWith('table inet alveary_ab_s {}\ndelete table inet alveary_ab_s\ntable inet alveary_ab_s {')).toBe(true)
    expect(made.endsWith(a)).toBe(true)
    expect(renderTableChange(names, b, a, false)).toBe(b)
    expect(renderTableChange(names, a, a, false)).toBeUndefined()
    expect(renderTableChange(names, a, a, true)).toBe(made)
    expect(renderTableChange(names, a, undefined, false)).toBe(made)
    // Nothing isolated left: the table goes (and again on a full pass).
    expect(renderTableChange(names, null, a, false)).toBe('table inet alveary_ab_s {}\ndelete table inet alveary_ab_s')
    expect(renderTableChange(names, null, null, false)).toBeUndefined()
    expect(renderTableChange(names, null, null, true)).toBe('table inet alveary_ab_s {}\ndelete table inet alveary_ab_s')
  })

  it('names its namespaces and links apart from the overlay’s', () => {
    const names = overlayNames('ab')
    expect(names.parseIsolatedNs(names.isolatedNs(id))).toBe(id)
    expect(names.parseNs(names.isolatedNs(id))).toBeNull()
    expect(names.isIsolatedVeth(names.isolatedVeth(id))).toBe(true)
    expect(names.parseNodeLink(names.isolatedVeth(id))).toBeNull()
    expect(names.isolatedVeth(id).length).toBeLessThanOrEqual(15)
  })

  it('builds a namespace in one script, the node side’s address last (with it, a namespace is whole), and reports each part', () => {
    const names = overlayNames('ab')
    const other = '0f1e2d3c-0000-4000-8000-000000000002'
    const script = renderActions(names, { create: [{ instanceId: id, ip: '169.254.170.9', replace: true }], nft: 'table inet alveary_ab_s {}', removeIds: [other], removeLinks: [] })
    const N = names.isolatedNs(id)
    const V = names.isolatedVeth(id)
    expect(script).toContain(`ip netns del ${N} 2>/dev/null || true`)
    expect(script.indexOf(`ip -n ${N} -batch -`)).toBeLessThan(script.indexOf(`addr add 169.254.0.1 peer 169.254.170.9/32 dev ${V}`))
    expect(script).toContain(`echo 1 > /proc/sys/net/ipv4/conf/${V}/route_localnet`)
    expect(script).toContain(`echo "ok ${id}"`)
    expect(script).toContain('echo "table $? $(echo "$nft_err"')
    // Deleted only once nothing runs in it (a stopping instance serves out its grace), its veth first (at once, not when the kernel gets to it).
    const [ON, OV] = [names.isolatedNs(other), names.isolatedVeth(other)]
    expect(script).toContain(`[ -z "$(ip netns pids ${ON} 2>/dev/null)" ] && { ip link del ${OV} 2>/dev/null; ip netns del ${ON}; } && echo "gone ${ON}"`)
    expect(renderActions(names, { create: [], removeIds: [], removeLinks: [] })).toBe('')
    // A pool namespace says so on its veth before it is whole (a claim rewrites the alias).
    const pool = renderActions(names, { create: [{ instanceId: id, ip: '169.254.170.9', replace: false, alias: 'alveary-pool' }], removeIds: [], removeLinks: [] })
    expect(pool.indexOf(`link set dev ${V} alias alveary-pool`)).toBeGreaterThan(0)
    expect(pool.indexOf('alias alveary-pool')).toBeLessThan(pool.indexOf(`addr add 169.254.0.1 peer`))
  })

  it('tells whose a namespace is from its veth’s alias', () => {
    expect(ownerOf(id, 'alveary-pool')).toBeNull()
    expect(ownerOf('0f1e2d3c-0000-4000-8000-000000000001', id)).toBe(id)
    // No alias: built for the instance its name carries.
    expect(ownerOf(id, '')).toBe(id)
  })
})
