/**
 * Everything volumes and fencing need on a node, in one place for the agent to wire: where
 * volumes live, the lease file the watchdogs read, the commands of moves, the capability
 * advertised in hello, and the usage reported every minute.
 */
import { join } from 'node:path'
import type { Logger } from 'pino'
import type { TCommandFrame, TCommandProgressFrame, TCommandResultFrame, TDesiredInstance, TVolumeCapability, TVolumeUsage } from '@alveary/core/protocol'
import { createLease } from '../fence/lease'
import type { DriverName, RuntimeDriver } from '../runtime/types'
import { createCommandRunner } from './commands'
import { createInstanceVolumes } from './instance-volumes'
import { probeVolumes } from './probe'
import { dataDir as dataOf, readEpochFile, volumeRoot, type VolumeDirs } from './store'
import { measureVolumes } from './usage'

const USAGE_EVERY_MS = 60_000

export function createNodeVolumes(o: {
  dataDir: string
  sharedDir: string | null
  address: string
  drivers: Partial<Record<DriverName, RuntimeDriver>>
  log: Logger
  send(frame: TCommandResultFrame | TCommandProgressFrame | TVolumeUsage): void
  /** Volumes mounted by instances here (never discarded or overwritten by a copy). */
  mounted(): ReadonlySet<string>
  /** The lease was renewed after it had lapsed, or a fresh desired state arrived: waiting starts may go. */
  onMayStart(): void
  /** The instances of the last desired state (their shared volumes are measured here). */
  desired(): readonly TDesiredInstance[]
  /** Who must own an instance's volumes (its tenant's uid when it runs sandboxed), or null: leave them. */
  ownerOf(desired: TDesiredInstance): { uid: number; gid: number } | null
  /** Prepares the network of an instance a move stages here (see NetworkDriver.whenStaged). */
  stageNetwork(instanceId: string, timeoutMs: number): Promise<boolean>
  /** See Supervisor.whenStopped. */
  whenStopped(instanceId: string, timeoutMs: number): Promise<boolean>
}) {
  const log = o.log.child({ part: 'volumes' })
  const dirs: VolumeDirs = { local: join(o.dataDir, 'volumes'), shared: o.sharedDir }
  const lease = createLease(o.dataDir, { onRenewed: o.onMayStart })
  let capability: TVolumeCapability | null = null
  /** A desired state arrived since the last (re)connection: stale copies are known to be gone. */
  let fresh = false
  /** The server renews leases (it said how long they last): watchdogs may rely on them. */
  let serverFences = false
  let usageTimer: NodeJS.Timeout | null = null

  const commands = createCommandRunner({ dirs, address: o.address, workDir: join(o.dataDir, 'copy'), drivers: o.drivers, mounted: o.mounted, send: o.send, stageNetwork: o.stageNetwork, whenStopped: o.whenStopped, log })
  const instances = createInstanceVolumes({ dirs, dataDir: o.dataDir, lease, ownerOf: o.ownerOf, fresh: () => fresh, canFence: () => serverFences && capability?.selfFence === true, endCopies: commands.closeSessionsOf, log })

  async function reportUsage() {
    const shared = new Map<string, string>()
    for (const d of o.desired()) {
      for (const m of d.mounts) if (m.driver === 'shared' && dirs.shared) shared.set(m.volumeId, dataOf(volumeRoot(dirs, { volumeId: m.volumeId, tenantId: d.tenantId, driver: 'shared' })))
    }
    const volumes = await measureVolumes(dirs, shared)
    if (volumes.length) o.send({ type: 'volume-usage', volumes })
  }

  return {
    instances,
    get capability() {
      return capability
    },
    /** Probes what the node offers and reads the lease a previous agent left. */
    async restore(dockerEngine: 'docker' | 'podman' | null) {
      capability = await probeVolumes({ sharedDir: o.sharedDir, dockerEngine })
      await lease.load()
      log.info({ ...capability, sharedDir: o.sharedDir }, 'volumes')
    },
    /** Why a re-adopted instance must stop before anything else: its lease lapsed, or its volume moved on. */
    async stale(fence: { fences: { epochFile: string; epoch: number }[] }): Promise<string | null> {
      if (!lease.valid()) return 'fenced: the node’s lease lapsed while no agent watched'
      for (const f of fence.fences) {
        const now = await readEpochFile(f.epochFile)
        if (now > f.epoch) return `fenced: its volume was attached elsewhere (epoch ${now} > ${f.epoch})`
      }
      return null
    },
    welcomed(selfFenceMs: number | undefined) {
      fresh = false
      // A server that does not say how long leases last does not renew them: no watchdog may count on it.
      serverFences = selfFenceMs !== undefined
      if (!serverFences) log.warn('the server does not renew leases: instances run without watchdogs')
      void lease.welcomed(selfFenceMs ?? 3_600_000).catch((err) => log.error({ err }, 'cannot write the lease file'))
    },
    applied() {
      if (fresh) return
      fresh = true
      o.onMayStart()
    },
    heartbeatSent: () => lease.sent(),
    leaseAcknowledged() {
      void lease.acknowledged().catch((err) => log.error({ err }, 'cannot write the lease file'))
    },
    disconnected() {
      fresh = false
      lease.disconnected()
    },
    command: (frame: TCommandFrame) => commands.handle(frame),
    startUsage() {
      usageTimer = setInterval(() => void reportUsage().catch((err) => log.warn({ err }, 'measuring volumes failed')), USAGE_EVERY_MS)
      usageTimer.unref()
    },
    async close() {
      if (usageTimer) clearInterval(usageTimer)
      await commands.close()
    },
  }
}
export type NodeVolumes = ReturnType<typeof createNodeVolumes>
