/**
 * Simulated overlay nodes for tests and benchmarks: each node is a network namespace on a
 * 198.18.0.0/15 underlay (packages/agents/test/netns.ts) running the real agent CLI inside it.
 * Agents reach the BFF through a relay over a Unix socket, so no traffic leaves the namespaces
 * made here (and the host's loopback). Needs root; see overlayUnavailable().
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { createConnection, createServer, type Server } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { makeUnderlay, type SimNode } from '../../../packages/agents/test/netns'
import { repoRoot } from '../src/config'

export interface SimCluster {
  nodes: SimNode[]
  /** The agent's node name: sim-1, sim-2… */
  name(n: SimNode): string
  byName(name: string): SimNode
  /** Storage every node mounts (--shared-volumes). */
  sharedDir: string
  dataDir(n: SimNode): string
  start(n: SimNode): void
  kill(n: SimNode): void
  /** The network namespace of an instance on a node (its overlay's naming). */
  instanceNs(n: SimNode, instanceId: string): string
  /** Stops agents, relays and whatever still runs in the nodes' namespaces; removes everything. */
  cleanup(): Promise<void>
}

export async function createSimCluster(o: { count: number; bffPort: () => number; joinToken: () => string; agentArgs?: string[] }): Promise<SimCluster> {
  const u = makeUnderlay(o.count)
  const dir = await mkdtemp(path.join(os.tmpdir(), 'alveary-sim-'))
  const sharedDir = path.join(dir, 'shared')
  execFileSync('mkdir', ['-p', sharedDir])
  const relaySock = path.join(dir, 'bff.sock')
  const relay: Server = createServer((c) => {
    // TCP_NODELAY like the agent's and the BFF's own WebSocket ends: without it each relayed
    // frame that follows another waits for the peer's delayed ACK (up to 40 ms), a delay a
    // direct agent connection never has (it inflated every hop of bench:migration).
    const b = createConnection({ port: o.bffPort(), host: '127.0.0.1', noDelay: true })
    c.pipe(b)
    b.pipe(c)
    c.on('error', () => b.destroy())
    b.on('error', () => c.destroy())
  })
  await new Promise<void>((r) => relay.listen(relaySock, r))
  const agents = new Map<string, ChildProcess>()
  const relays = new Map<string, ChildProcess>()
  const name = (n: SimNode) => `sim-${u.nodes.indexOf(n) + 1}`
  const dataDir = (n: SimNode) => path.join(dir, n.ns)

  return {
    nodes: u.nodes,
    name,
    byName: (s) => u.nodes.find((n) => name(n) === s)!,
    sharedDir,
    dataDir,
    start(n) {
      const k = u.nodes.indexOf(n) + 1
      if (!relays.has(n.ns)) {
        const script = `require('net').createServer({noDelay:true},(c)=>{const u=require('net').connect(${JSON.stringify(relaySock)});c.pipe(u);u.pipe(c);c.on('error',()=>u.destroy());u.on('error',()=>c.destroy())}).listen(4000,'127.0.0.1')`
        relays.set(n.ns, spawn('nsenter', [`--net=/run/netns/${n.ns}`, '--', process.execPath, '-e', script], { stdio: 'ignore' }))
      }
      const args = [
        path.join(repoRoot, 'packages/agents/bin/alveary-agent.mjs'),
        ...['--server', 'ws://127.0.0.1:4000', '--join-token', o.joinToken(), '--name', name(n), '--address', n.ip],
        ...['--network', 'overlay', '--network-prefix', n.prefix, '--data-dir', dataDir(n), '--shared-volumes', sharedDir],
        ...['--port-range', `${31000 + k * 100}-${31000 + k * 100 + 99}`, '--log-level', process.env.TEST_LOG ?? 'warn', '--docker-host', 'none'],
        ...(o.agentArgs ?? []),
      ]
      const child = spawn('nsenter', [`--net=/run/netns/${n.ns}`, '--', process.execPath, ...args], { cwd: repoRoot, stdio: ['ignore', 'inherit', 'inherit'] })
      agents.set(n.ns, child)
    },
    kill(n) {
      agents.get(n.ns)?.kill('SIGKILL')
      agents.delete(n.ns)
    },
    instanceNs: (n, id) => `/run/netns/${n.prefix}-i-${id}`,
    async cleanup() {
      for (const c of [...agents.values(), ...relays.values()]) c.kill('SIGKILL')
      // Whatever still runs in the nodes' namespaces (instances and watchdogs outlive a killed agent).
      const names = execFileSync('ip', ['netns', 'list']).toString().split('\n').map((l) => l.split(' ')[0]!).filter(Boolean)
      for (const ns of names)
        if (u.nodes.some((n) => ns === n.ns || ns.startsWith(`${n.prefix}-`)))
          for (const p of execFileSync('ip', ['netns', 'pids', ns]).toString().split('\n').filter(Boolean)) {
            try {
              process.kill(Number(p), 'SIGKILL')
            } catch {
              /* gone */
            }
          }
      relay.close()
      u.cleanup()
      await rm(dir, { recursive: true, force: true })
    },
  }
}
