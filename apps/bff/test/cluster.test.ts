import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { machineLeftovers } from '../../../packages/agents/test/netns'
import { createCluster, type TestCluster } from './cluster'
import { addMember, callerFor, OPERATOR, readyNodes, startTestBff, waitFor, type TestBff } from './harness'

// The test cluster of the volume, move and fencing tests leaves the machine as it found it, even
// when a test failed after killing an agent with SIGKILL (its instances keep running by design,
// sandboxed in namespaces and cgroups of its node's prefix): nothing of that prefix stays.
function sandboxMissing(): string | null {
  if (process.getuid?.() !== 0) return 'not root'
  try {
    execFileSync('bwrap', ['--version'], { stdio: 'ignore' })
  } catch {
    return 'bubblewrap is not installed'
  }
  return null
}
const noSandbox = sandboxMissing()

let bff: TestBff
let cluster: TestCluster

beforeAll(async () => {
  bff = await startTestBff()
  const op = await callerFor(bff, OPERATOR.email, OPERATOR.password)
  const joinToken = (await op.joinTokens.create({ description: 'cluster', ttlHours: 1, uses: 1 })).token
  cluster = await createCluster({ server: () => bff.url, joinToken: () => joinToken, names: ['node-k'] })
  cluster.start('node-k')
  await readyNodes(op, 1)
})
afterAll(async () => {
  await cluster?.stopAll().catch(() => {})
  await bff?.stop()
  await bff?.dropDatabase()
})

it('stopAll removes what an agent killed with SIGKILL left running: its instance, namespace, nftables table and cgroups', async () => {
  const op = await callerFor(bff, OPERATOR.email, OPERATOR.password)
  const tenantId = (await op.tenants.create({ slug: 'left', name: 'Left' })).id
  await addMember(bff, op, tenantId, { email: 'dev@left.test', name: 'Dev', password: 'dev-password', role: 'owner' })
  const dev = await callerFor(bff, 'dev@left.test', 'dev-password')
  const { id: appId } = await dev.apps.create({ tenantId, name: 'hello', replicas: 1, spec: { command: 'node', args: ['examples/hello/server.js'], cpuMillis: 100, memoryMb: 64 } })
  const inst = await waitFor('running', async () => (await dev.apps.get({ tenantId, appId })).instances.find((i) => i.state === 'running' && i.url), 30_000)
  const prefix = cluster.prefix('node-k')
  await waitFor('answering', () => fetch(inst.url!, { signal: AbortSignal.timeout(1500) }).then((r) => r.ok, () => false), 30_000)
  // The pid of the run that answers (the agent writes its state file before it reports running).
  const state = await waitFor('its state file', async () => {
    const s = JSON.parse(await readFile(path.join(cluster.dataDir('node-k'), 'instances', inst.id, 'state.json'), 'utf8')) as { pid: number | null }
    return s.pid && running(s.pid) ? { pid: s.pid } : null
  })
  if (!noSandbox) {
    // Its own namespace (built for it, or taken from the node's pool of them): one of the prefix's.
    const netns = execFileSync('ip', ['netns', 'identify', String(state.pid)]).toString().trim()
    expect(netns).toMatch(new RegExp(`^${prefix}-s-`))
    expect(machineLeftovers(prefix).map((x) => x.what)).toContain(`namespace ${netns}`)
  }

  await cluster.kill('node-k')
  expect(running(state.pid)).toBe(true)
  await cluster.stopAll()
  expect(machineLeftovers(prefix).map((x) => x.what)).toEqual([])
  expect(running(state.pid)).toBe(false)
})

function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return !stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')
  } catch {
    return false
  }
}
