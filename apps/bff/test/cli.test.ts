import { execFile, spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { repoRoot } from '../src/config'
import { addMember, callerFor, OPERATOR, startInProcessAgent, startTestBff, waitFor, type Caller, type TestBff } from './harness'

/**
 * The CLI (`alveary`, packages/cli) against a running system: a BFF, a real agent running the
 * sample app's processes. Every command runs the real bin as a child process, like a person
 * or a CI job would, with its own config file.
 */
const BIN = path.join(repoRoot, 'packages/cli/bin/alveary.mjs')

let bff: TestBff
let op: Caller
let agent: Awaited<ReturnType<typeof startInProcessAgent>>
let dir: string
let token: string

interface Run {
  code: number
  stdout: string
  stderr: string
}
function alveary(args: string[], opts: { config?: string; stdin?: string; env?: Record<string, string> } = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [BIN, ...args],
      { cwd: dir, env: { PATH: process.env.PATH ?? '', HOME: dir, ALVEARY_CONFIG: path.join(dir, opts.config ?? 'config.json'), ...opts.env }, timeout: 240_000 },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    )
    if (opts.stdin !== undefined) child.stdin!.end(opts.stdin)
  })
}
const ok = async (args: string[], opts?: Parameters<typeof alveary>[1]) => {
  const r = await alveary(args, opts)
  if (r.code !== 0) throw new Error(`alveary ${args.join(' ')} exited ${r.code}: ${r.stderr}${r.stdout}`)
  return r
}
const json = async <T>(args: string[]) => JSON.parse((await ok([...args, '--json'])).stdout) as T

const appFile = (replicas: number, version = '1') => `name: web
replicas: ${replicas}
spec:
  command: node
  args: [examples/hello/server.js]
  env: { VERSION: "${version}" }
  cpuMillis: 10
  memoryMb: 16
`

beforeAll(async () => {
  bff = await startTestBff()
  dir = await mkdtemp(path.join(os.tmpdir(), 'alveary-cli-'))
  op = await callerFor(bff, OPERATOR.email, OPERATOR.password)
  const joinToken = (await op.joinTokens.create({ description: 'cli', ttlHours: 1, uses: 1 })).token
  const tenantId = (await op.tenants.create({ slug: 'shell', name: 'Shell' })).id
  await addMember(bff, op, tenantId, { email: 'sam@shell.test', name: 'Sam', password: 'sam-password', role: 'owner' })
  const sam = await callerFor(bff, 'sam@shell.test', 'sam-password')
  token = (await sam.tokens.create({ tenantId, name: 'laptop', role: 'owner', ttlDays: 1 })).token
  // The sample app's path is relative to the agent's working directory: the repository.
  await writeFile(path.join(dir, 'app.yaml'), appFile(1))
  agent = await startInProcessAgent({ server: bff.url, joinToken, name: 'cli-node', dataDir: path.join(dir, 'agent') })
  await waitFor('node ready', async () => (await op.nodes.list()).find((n) => n.name === 'cli-node' && n.state === 'ready'), 60_000)
}, 120_000)
afterAll(async () => {
  await agent?.shutdown({ stopInstances: true })
  await bff?.stop()
  await bff?.dropDatabase()
  if (dir) await rm(dir, { recursive: true, force: true })
})

describe('alveary CLI', () => {
  it('logs in with a token and deploys, scales and lists an app', async () => {
    expect((await alveary(['apps', 'list'])).code).toBe(4) // no server, no credential
    const login = await ok(['login', '--server', bff.url, '--token', token])
    expect(login.stdout).toMatch(/Logged in .* as sam@shell\.test, tenant shell/)

    const deployed = await ok(['apps', 'deploy', '-f', 'app.yaml', '--wait', '--timeout', '120'])
    expect(deployed.stderr).toMatch(/1\/1 running/)
    expect(deployed.stdout).toMatch(/running/)
    await ok(['apps', 'scale', 'web', '2', '--wait', '--timeout', '120'])
    const apps = await json<{ name: string; replicas: number; running: number }[]>(['apps', 'list'])
    expect(apps).toMatchObject([{ name: 'web', replicas: 2, running: 2 }])
    const instances = await json<{ state: string; node: { name: string } }[]>(['instances', 'web'])
    expect(instances.map((i) => [i.state, i.node.name])).toEqual([
      ['running', 'cli-node'],
      ['running', 'cli-node'],
    ])
    expect((await ok(['apps', 'list'])).stdout).toMatch(/^NAME\s+REPLICAS\s+RUNNING/)
  })

  it('follows logs', async () => {
    const child = spawn(process.execPath, [BIN, 'logs', 'web', '-f'], { cwd: dir, env: { PATH: process.env.PATH ?? '', HOME: dir, ALVEARY_CONFIG: path.join(dir, 'config.json') } })
    let out = ''
    child.stdout.on('data', (d: Buffer) => (out += d.toString()))
    try {
      await waitFor('the sample app’s output', async () => out.includes('hello: listening on port'), 60_000)
      // A new line arrives while following: a new revision's instances start and say so.
      const before = out.split('listening').length
      await ok(['apps', 'update', 'web', '--env', 'VERSION=2', '--wait', '--timeout', '120'])
      await waitFor('new lines while following', async () => out.split('listening').length > before, 60_000)
    } finally {
      child.kill('SIGINT')
    }
  })

  it('applies a file: diff first, --dry-run changes nothing, then converges, then has nothing to do', async () => {
    const tenantFile = (o: { algorithm?: string; storeMb?: number; lb?: boolean; worker?: boolean } = {}) => `networks:
  - name: back
apps:
  - ${appFile(3, '2').trim().replace(/\n/g, '\n    ')}
${
  o.worker === false
    ? ''
    : `  - name: worker
    replicas: 1
    spec: { command: node, args: [examples/hello/server.js], cpuMillis: 10, memoryMb: 16 }
`
}  - name: store
    replicas: 0
    spec: { command: node, args: [examples/hello/server.js], cpuMillis: 10, memoryMb: 16, volumes: [{ name: data, sizeMb: ${o.storeMb ?? 64}, mountPath: /data }] }
${
  o.lb === false
    ? ''
    : `loadBalancers:
  - name: front
    algorithm: ${o.algorithm ?? 'roundrobin'}
    listeners:
      - protocol: http
        rules: [{ targets: [{ app: web, port: http }] }]
`
}`
    await writeFile(path.join(dir, 'tenant.yaml'), tenantFile())
    const dry = await ok(['apply', '-f', 'tenant.yaml', '--dry-run'])
    expect(dry.stderr).toContain('+ network back')
    expect(dry.stderr).toContain('~ app web: replicas 2 → 3')
    expect(dry.stderr).toContain('+ app worker: 1 replica of node examples/hello/server.js')
    expect(dry.stderr).toContain('+ app store: 0 replicas of node examples/hello/server.js, volumes data (64 MiB at /data)')
    expect(dry.stderr).toContain('+ load balancer front: http:auto → web/http')
    expect(dry.stderr).not.toContain('spec.')
    expect(dry.stdout).toMatch(/5 changes \(dry run/)
    expect((await json<unknown[]>(['apps', 'list'])).length).toBe(1)
    expect(await json<unknown[]>(['lb', 'list'])).toEqual([])

    await ok(['apply', '-f', 'tenant.yaml', '--wait', '--timeout', '180'])
    const apps = await json<{ name: string; replicas: number }[]>(['apps', 'list'])
    expect(apps.map((a) => [a.name, a.replicas]).sort()).toEqual([
      ['store', 0],
      ['web', 3],
      ['worker', 1],
    ])
    const lbs = await json<{ name: string; algorithm: string; listeners: { port: number; rules: { targets: { appId: string }[] }[] }[] }[]>(['lb', 'list'])
    const webId = (await json<{ id: string }>(['apps', 'get', 'web'])).id
    expect(lbs.map((l) => [l.name, l.algorithm, l.listeners[0]!.rules[0]!.targets[0]!.appId])).toEqual([['front', 'roundrobin', webId]])
    const again = await ok(['apply', '-f', 'tenant.yaml', '--dry-run', '--json'])
    expect(JSON.parse(again.stdout).changes).toEqual([])

    // A change to the load balancer converges it (with the ETag the plan read).
    await writeFile(path.join(dir, 'tenant.yaml'), tenantFile({ algorithm: 'leastconn' }))
    const changed = await ok(['apply', '-f', 'tenant.yaml'])
    expect(changed.stderr).toContain('~ load balancer front: algorithm roundrobin → leastconn')
    expect((await json<{ algorithm: string; listeners: { port: number }[] }[]>(['lb', 'list']))[0]).toMatchObject({ algorithm: 'leastconn', listeners: [{ port: lbs[0]!.listeners[0]!.port }] })

    // Volumes are set at creation: a file that changes them is refused before anything changes.
    await writeFile(path.join(dir, 'tenant.yaml'), tenantFile({ algorithm: 'leastconn', storeMb: 128 }))
    const refused = await alveary(['apply', '-f', 'tenant.yaml'])
    expect(refused.code).toBe(5)
    expect(refused.stderr).toContain("! app store has volumes data (64 MiB at /data), the file says data (128 MiB at /data): an app's volumes cannot change")

    // --prune: what the file leaves out goes, load balancers before the apps they send traffic to.
    await writeFile(path.join(dir, 'tenant.yaml'), tenantFile({ lb: false, worker: false }))
    const pruned = await ok(['apply', '-f', 'tenant.yaml', '--prune'])
    expect(pruned.stderr.indexOf('- load balancer front')).toBeGreaterThanOrEqual(0)
    expect(pruned.stderr.indexOf('- load balancer front')).toBeLessThan(pruned.stderr.indexOf('- app worker'))
    expect(await json<unknown[]>(['lb', 'list'])).toEqual([])
    await waitFor('worker deleted', async () => !(await json<{ name: string }[]>(['apps', 'list'])).some((a) => a.name === 'worker'), 60_000)
  })

  it('says what went wrong with exit codes', async () => {
    expect((await alveary(['apps', 'get', 'nope'])).code).toBe(3)
    expect((await alveary(['apps', 'scale', 'web', '-5'])).code).toBe(2)
    expect((await alveary(['apps', 'bogus'])).code).toBe(2)
    await writeFile(path.join(dir, 'bad.yaml'), 'name: Bad Name\nreplicas: 1\nspec: { command: node, cpuMillis: 1, memoryMb: 16 }\n')
    const bad = await alveary(['apps', 'deploy', '-f', 'bad.yaml'])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/name: .*\n.*spec\.cpuMillis: At least 10/)
    const dup = await alveary(['apps', 'deploy', '-f', 'app.yaml'])
    expect(dup.code).toBe(5)
    // A wait that cannot end says why while it waits and when it gives up (a long minimum ready time: a start
    // slowed by load never counts as available however long it runs before it exits).
    await writeFile(path.join(dir, 'crash.yaml'), "name: crash\nreplicas: 1\nspec: { command: node, args: [-e, 'process.exit(3)'], cpuMillis: 10, memoryMb: 32, minReadySeconds: 120 }\n")
    try {
      const crash = await alveary(['apps', 'deploy', '-f', 'crash.yaml', '--wait', '--timeout', '20'])
      expect(crash.code).toBe(9)
      expect(crash.stderr).toMatch(/rollout: 0\/1 running · #0 \w+: .*exit.*3/)
      expect(crash.stderr).toMatch(/Timed out after 20 s waiting for rollout \(0\/1 running/)
      // The list counts it as crashing, as the app page does (the console's list said "starting").
      const listed = async () => (JSON.parse((await alveary(['apps', 'list', '--json'])).stdout) as Array<{ name: string; running: number; crashing: number }>).find((a) => a.name === 'crash')
      await waitFor('the list counts the crashing replica', async () => (await listed())?.crashing === 1, 30_000)
    } finally {
      expect((await alveary(['apps', 'delete', 'crash'])).code).toBe(0)
    }
    // A tenant token is not an operator.
    const nodes = await alveary(['nodes', 'list'])
    expect(nodes.code).toBe(4)
    const stopped = await alveary(['apps', 'list'], { env: { ALVEARY_SERVER: 'http://127.0.0.1:9' } })
    expect(stopped.code).toBe(7)
  })

  it('lets an operator sign in and manage nodes', async () => {
    await ok(['login', '--server', bff.url, '--email', OPERATOR.email, '--password-stdin'], { config: 'op.json', stdin: `${OPERATOR.password}\n` })
    const asOp = (args: string[]) => ok(args, { config: 'op.json' })
    const nodes = JSON.parse((await asOp(['nodes', 'list', '--json'])).stdout) as { name: string; schedulable: boolean }[]
    expect(nodes.map((n) => n.name)).toEqual(['cli-node'])
    await asOp(['nodes', 'cordon', 'cli-node'])
    expect((await op.nodes.list())[0]!.schedulable).toBe(false)
    await asOp(['nodes', 'uncordon', 'cli-node'])
    expect((await op.nodes.list())[0]!.schedulable).toBe(true)
    await asOp(['nodes', 'load-balancing', 'cli-node', 'on'])
    expect((await op.nodes.list())[0]!.loadBalancing).toBe(true)
    await asOp(['nodes', 'load-balancing', 'cli-node', 'off'])
    expect((await op.nodes.list())[0]!.loadBalancing).toBe(false)
    expect((await alveary(['nodes', 'load-balancing', 'cli-node', 'maybe'], { config: 'op.json' })).code).toBe(2)
    const audit = (await asOp(['audit', '--all', '--action', 'nodes.', '--json'])).stdout
    expect(JSON.parse(audit).map((r: { action: string; door: string; userAgent: string }) => [r.action, r.door, r.userAgent])).toEqual([
      ['nodes.uncordon', 'rest', 'alveary-cli/0.1.0'],
      ['nodes.cordon', 'rest', 'alveary-cli/0.1.0'],
    ])
  })

  it('takes a newcomer from the operator login to an owner with a token, all from the shell', async () => {
    await ok(['login', '--server', bff.url, '--email', OPERATOR.email, '--password-stdin'], { config: 'op2.json', stdin: `${OPERATOR.password}\n` })
    const asOp = (args: string[]) => ok(args, { config: 'op2.json' })
    expect((await asOp(['tenants', 'create', 'fresh', '--name', 'Fresh'])).stdout).toMatch(/tenant fresh created/)
    const invitation = (await asOp(['invite', 'nia@fresh.test', '--role', 'owner', '--tenant', 'fresh'])).stdout.split('\n')[0]!
    expect(invitation).toMatch(/^iv_/)
    const signedUp = await ok(['--server', bff.url, 'signup', '--invitation', invitation, '--name', 'Nia', '--password-stdin'], { config: 'nia.json', stdin: 'nia-password-1\n' })
    expect(signedUp.stdout).toMatch(/Signed up and logged in .*, tenant fresh/)
    const asNia = (args: string[]) => ok(args, { config: 'nia.json' })
    expect((await asNia(['whoami'])).stdout).toMatch(/nia@fresh\.test[\s\S]*fresh\s+owner/)
    const apiToken = (await asNia(['tokens', 'create', 'ci', '--role', 'developer'])).stdout.trim()
    expect(apiToken).toMatch(/^at_/)
    await ok(['login', '--server', bff.url, '--token', apiToken], { config: 'ci.json' })
    expect(JSON.parse((await ok(['apps', 'list', '--json'], { config: 'ci.json' })).stdout)).toEqual([])
    // A token cannot make tokens or invite (people do): refused, with the exit code for it.
    expect((await alveary(['tokens', 'create', 'again'], { config: 'ci.json' })).code).toBe(4)
    expect((await alveary(['invite', 'x@fresh.test'], { config: 'ci.json' })).code).toBe(4)
  })

  it('prints a shell completion script that bash accepts and that completes commands', async () => {
    const script = (await ok(['completion', 'bash'])).stdout
    const file = path.join(dir, 'completion.bash')
    await writeFile(file, script)
    const complete = (line: string) =>
      new Promise<string>((resolve, reject) =>
        execFile('bash', ['-c', `source ${file}; COMP_WORDS=(${line}); COMP_CWORD=$((\${#COMP_WORDS[@]}-1)); _alveary; echo "\${COMPREPLY[@]}"`], (err, out) => (err ? reject(err) : resolve(out.trim()))),
      )
    expect((await complete('alveary ap')).split(' ')).toEqual(['apps', 'apply'])
    expect((await complete('alveary apps sc')).split(' ')).toEqual(['scale'])
    expect(await complete('alveary nodes dr')).toBe('drain')
  })
})
