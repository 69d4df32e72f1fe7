/** Writes of revisions and rollouts, shared by updates, manual and automatic rollbacks. */
import { CoreError } from '../errors'
import type { Prisma } from '../generated/prisma/client'
import { ZAppSpec, type TAppSpec } from '../schemas/app'
import type { Tx } from '../store/db'
import { templateHash } from './revisions'

/** The App columns that hold a spec. */
export const specColumns = (spec: TAppSpec) =>
  ({
    driver: spec.driver,
    image: spec.image ?? null,
    command: spec.command ?? null,
    args: spec.args,
    env: spec.env,
    ports: spec.ports,
    cpuMillis: spec.cpuMillis,
    memoryMb: spec.memoryMb,
    pidsMax: spec.pidsMax,
    readOnlyRootfs: spec.readOnlyRootfs,
    restartPolicy: spec.restartPolicy,
    stopGraceSeconds: spec.stopGraceSeconds,
    nodeSelector: spec.nodeSelector,
    spread: spec.spread,
    placementStrategy: spec.placementStrategy,
    priorityClass: spec.priorityClass,
    maxUnavailable: spec.maxUnavailable,
    maxSurge: spec.maxSurge,
    progressDeadlineSeconds: spec.progressDeadlineSeconds,
    minReadySeconds: spec.minReadySeconds,
  }) satisfies Prisma.AppUpdateInput

export const revisionSpec = (json: Prisma.JsonValue): TAppSpec => ZAppSpec.parse(json)

/**
 * Makes `spec` the app's newest revision. When its instance template differs from the
 * current one, a rollout replaces the instances (any rollout in progress is superseded);
 * otherwise the running instances simply carry the new revision. The caller holds the app.
 */
export async function appendRevision(
  tx: Tx,
  app: { id: string; tenantId: string; revision: number; replicas: number },
  spec: TAppSpec,
  o: { cause: string; actorId: string | null; kind: 'update' | 'rollback' | 'auto_rollback'; now: Date },
): Promise<{ revision: number; rollout: boolean }> {
  const cur = await tx.appRevision.findUnique({ where: { appId_revision: { appId: app.id, revision: app.revision } }, select: { templateHash: true } })
  if (!cur) throw new CoreError('NOT_FOUND', 'The current revision is missing')
  const hash = templateHash(spec)
  const revision = app.revision + 1
  await tx.appRevision.create({ data: { appId: app.id, revision, spec: spec as Prisma.InputJsonValue, templateHash: hash, cause: o.cause, createdById: o.actorId } })
  await tx.app.update({ where: { id: app.id }, data: { ...specColumns(spec), revision, generation: { increment: 1 } } })
  const rollout = hash !== cur.templateHash
  if (rollout) {
    await tx.rollout.updateMany({ where: { appId: app.id, state: 'progressing' }, data: { state: 'superseded', finishedAt: o.now, step: `superseded by revision ${revision}` } })
    await tx.rollout.create({ data: { tenantId: app.tenantId, appId: app.id, kind: o.kind, fromRevision: app.revision, toRevision: revision, replicas: app.replicas } })
  }
  return { revision, rollout }
}
