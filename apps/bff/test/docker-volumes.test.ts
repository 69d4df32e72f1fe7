import { stat } from 'node:fs/promises'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { instanceContainers, removeNodeContainers, TEST_IMAGE, testEngine } from '../../../packages/agents/test/engine'
import { toolHere } from '../../../packages/agents/test/helpers'
import { createCluster, type TestCluster } from './cluster'
import { addMember, callerFor, OPERATOR, readyNodes, startTestBff, waitFor, type TestBff } from './harness'

// An image app's volume through the platform: two agent processes on the test engine, the
// container restarted behind the agent's back and moved to the other node (copied with rsync).
// Where the engine gives containers user namespaces (CI: .ci/run gives Podman's `containers` an
// id range), the container's root is an unprivileged host uid that changes from one container to
// the next, and the volume must stay writable all the same.
const engine = await testEngine()
const noRsync = toolHere('rsync', 'skipping the docker volume tests (local volumes move with it)') ? null : 'no rsync'
const NODES = [`dv-a-${process.pid}`, `dv-b-${process.pid}`]
let bff: TestBff
let cluster: TestCluster
let tenantId: string
type Caller = Awaited<ReturnType<typeof callerFor>>
let op: Caller
let dev: Caller

// Every start appends "<host uid of its root> <instance>" to the volume, and the volume is what it serves.
const app = () => ({
  tenantId,
  name: 'starts',
  replicas: 1,
  spec: {
    driver: 'docker' as const,
    image: TEST_IMAGE,
    command: 'sh',
    args: ['-c', 'echo "$(awk \'{print $2}\' /proc/self/uid_map) $ALVEARY_INSTANCE_ID" >> /data/starts || { echo "the volume is not writable"; exit 1; }; exec httpd -f -p 8080 -h /data'],
    ports: [{ name: 'http', containerPort: 8080 }],
    cpuMillis: 100,
    memoryMb: 32,
    stopGraceSeconds: 2,
    volumes: [{ name: 'data', driver: 'local' as const, sizeMb: 64, mountPath: '/data' }],
  },
})

const running = (appId: string) =>
  waitFor('the instance running', async () => {
    const i = (await dev.apps.get({ tenantId, appId })).instances.find((x) => x.desiredState === 'running')
    return i?.state === 'running' && i.url && !i.moving ? i : null
  }, 60_000)
/** The volume's lines as the container serves them, once there are `n`. */
const startsAt = (url: string, n: number) =>
  waitFor(`${n} starts in the volume`, async () => {
    const r = await fetch(`${url}/starts`, { signal: AbortSignal.timeout(2000) }).catch(() => null)
    const lines = r?.ok ? (await r.text()).trim().split('\n') : []
    return lines.length === n ? lines.map((l) => ({ uid: Number(l.split(' ')[0]), instanceId: l.split(' ')[1] })) : null
  }, 60_000)

beforeAll(async () => {
  if (!engine || noRsync) return
  bff = await startTestBff({ ALVEARY_HEARTBEAT_MS: '1000', ALVEARY_NODE_LEASE_MS: '5000' })
  op = await callerFor(bff, OPERATOR.email, OPERATOR.password)
  const joinToken = (await op.joinTokens.create({ description: 'docker volumes', ttlHours: 1, uses: 5 })).token
  tenantId = (await op.tenants.create({ slug: 'dvol', name: 'Docker volumes' })).id
  await addMember(bff, op, tenantId, { email: 'dev@dvol.test', name: 'Dev', password: 'dev-password', role: 'owner' })
  dev = await callerFor(bff, 'dev@dvol.test', 'dev-password')
  cluster = await createCluster({ server: () => bff.url, joinToken: () => joinToken, names: NODES, dockerHost: engine.host })
  for (const n of NODES) cluster.start(n)
  await readyNodes(op, 2)
})
afterAll(async () => {
  await cluster?.stopAll()
  if (engine) for (const n of NODES) await removeNodeContainers(engine.docker, n)
  await bff?.stop()
  await bff?.dropDatabase()
})

describe.skipIf(!engine || noRsync)('an image app’s volume', { timeout: 180_000 }, () => {
  it('stays writable when its container restarts and when it moves to another node, in a user namespace where the engine gives one', async () => {
    const nodes = (await op.nodes.list()).filter((n) => NODES.includes(n.name))
    const userns = nodes.every((n) => n.containers?.userns)
    if (process.env.CI === 'true' && engine!.engine === 'podman') expect(nodes.map((n) => n.containers?.usernsMode)).toEqual(['auto', 'auto'])
    const { id: appId } = await dev.apps.create(app())
    const inst = await running(appId)
    const hostFile = (node: string) => path.join(cluster.dataDir(node), 'volumes', inst.volumes[0]!.id, 'data', 'starts')
    const [first] = await startsAt(inst.url!, 1)
    // Root in the container: an unprivileged host uid where there are user namespaces, and what it wrote is that uid's on the host.
    if (userns) expect(first!.uid).toBeGreaterThan(65_535)
    else expect(first!.uid).toBe(0)
    expect((await stat(hostFile(inst.node!.name))).uid).toBe(first!.uid)

    // Killed behind the agent's back: a new container, started again on the same volume.
    const [container] = await instanceContainers(engine!.docker, inst.id)
    await engine!.docker.getContainer(container!.Id).kill()
    const lines = await startsAt(inst.url!, 2)
    expect(lines.map((l) => l.instanceId)).toEqual([inst.id, inst.id])

    // Moved: the copy at the target is written by a container with the target's ids.
    const target = nodes.find((n) => n.name !== inst.node!.name)!
    const move = await op.moves.start({ instanceId: inst.id, targetNodeId: target.id })
    const done = await waitFor('the move to finish', async () => {
      const m = await op.moves.get({ moveId: move.id })
      return m.state === 'succeeded' || m.state === 'failed' ? m : null
    }, 90_000, 200)
    expect(done.error).toBeNull()
    const moved = await running(appId)
    expect(moved.node!.name).toBe(target.name)
    const after = await startsAt(moved.url!, 3)
    expect(after[2]!.instanceId).toBe(inst.id)
    if (userns) expect(after[2]!.uid).toBeGreaterThan(65_535)
    expect((await stat(hostFile(target.name))).uid).toBe(after[2]!.uid)
  })
})
