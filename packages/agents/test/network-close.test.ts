import { execFile } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { TDesired } from '@alveary/core/protocol'
import { makeInstance } from './helpers'
import { leftovers, makeUnderlay, overlayUnavailable, type Underlay } from './netns'

// What an agent's networks leave on its node when it exits: with its instances left running (an
// agent restart: the next agent adopts them) everything stays; once it stopped every instance
// (--stop-on-exit, as npm start's agent on Ctrl-C) the overlay's namespaces, links and table and
// the isolated namespaces go too. The agent's own network driver runs inside a simulated node.
const skip = overlayUnavailable()
const RUNNER = path.resolve(import.meta.dirname, 'fixtures/network-driver.ts')

describe.skipIf(skip)('the network driver when its agent exits', () => {
  let u: Underlay
  let desired: TDesired

  function runDriver(how: 'stopped' | 'running'): Promise<string> {
    const n = u.nodes[0]!
    return new Promise((resolve, reject) =>
      execFile(
        'nsenter',
        [`--net=/run/netns/${n.ns}`, '--', process.execPath, '--import', 'tsx', RUNNER, n.prefix, n.ip, JSON.stringify(desired), how],
        { cwd: path.resolve(import.meta.dirname, '..'), timeout: 90_000 },
        (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)),
      ),
    )
  }

  beforeAll(() => {
    u = makeUnderlay(1)
    const n = u.nodes[0]!
    const onNetwork = makeInstance({ interfaces: [{ networkId: randomUUID(), ip: '100.64.0.2', mac: '02:a1:64:40:00:02', prefixLength: 24, gateway: '100.64.0.1' }] })
    const net = {
      networkId: onNetwork.interfaces[0]!.networkId,
      vxlanId: 4310,
      cidr: '100.64.0.0/24',
      gateway: '100.64.0.1',
      gatewayMac: '02:a0:00:10:d6:01',
      peers: [],
      endpoints: [{ ip: '100.64.0.2', mac: '02:a1:64:40:00:02', node: n.ip, app: 'web', ordinal: 0, ready: true }],
    }
    // A sandboxed process instance on host networking: a namespace of its own (isolated.ts), its port forwarded.
    const isolated = makeInstance({ spec: { ports: [{ name: 'http', containerPort: null, hostPort: 20_081 }] } })
    desired = { type: 'desired', generation: 3, instances: [onNetwork, isolated], networks: [net], loadBalancers: [] }
  })
  afterAll(() => u?.cleanup())

  it('keeps the node’s networks while its instances run on (an agent restart)', async () => {
    expect(await runDriver('running')).toBe('ready\n')
    const left = leftovers(u.nodes[0]!)
    const p = u.nodes[0]!.prefix
    for (const what of [`netns ${p}-n4310`, `netns ${p}-i-${desired.instances[0]!.instanceId}`, `netns ${p}-s-${desired.instances[1]!.instanceId}`, `link ${p}t4310`]) expect(left).toContain(what)
    expect(left.filter((l) => l.startsWith('nft table'))).not.toEqual([])
  })

  it('removes all of them once every instance was stopped (--stop-on-exit, npm start’s Ctrl-C)', async () => {
    expect(await runDriver('stopped')).toBe('ready\n')
    expect(leftovers(u.nodes[0]!)).toEqual([])
  })
})
