/** Persistence of moves: one row per move, one per step (the saga's only memory). */
import type { Prisma } from '../generated/prisma/client'
import type { ChangeBus } from '../store/change-bus'
import type { Db } from '../store/db'
import type { SagaStore, StepState } from './saga'
import { STEP_NAMES } from './steps'
import type { MoveReason, MoveRecord } from './types'

export function createMoveStore({ db, bus }: { db: Db; bus: ChangeBus }) {
  const saga: SagaStore<MoveRecord> = {
    async load(moveId) {
      const m = await db.move.findUnique({ where: { id: moveId }, include: { steps: { orderBy: { index: 'asc' } } } })
      if (!m) return null
      return {
        id: m.id,
        state: m.state,
        steps: m.steps.map((s) => ({ index: s.index, name: s.name, state: s.state as StepState, attempts: s.attempts, data: (s.data ?? {}) as Record<string, unknown>, startedAt: s.startedAt })),
        record: { id: m.id, tenantId: m.tenantId, appId: m.appId, instanceId: m.instanceId, reason: m.reason, sourceNodeId: m.sourceNodeId, targetNodeId: m.targetNodeId },
      }
    },
    async updateStep(moveId, index, patch) {
      const { bytes, data, ...rest } = patch
      await db.moveStep.update({
        where: { moveId_index: { moveId, index } },
        data: { ...rest, ...(bytes !== undefined && { bytes: bytes === null ? null : BigInt(bytes) }), ...(data && { data: data as Prisma.InputJsonValue }) },
      })
      bus.publish({ kind: 'move', moveId })
    },
    async updateMove(moveId, patch) {
      await db.move.update({ where: { id: moveId }, data: patch })
      bus.publish({ kind: 'move', moveId })
    },
  }

  return {
    saga,
    /** Creates the move and its steps; the caller holds the instance row locked in `tx`. */
    async create(
      tx: Prisma.TransactionClient,
      m: { tenantId: string; appId: string; instanceId: string; reason: MoveReason; sourceNodeId: string; targetNodeId: string | null; requestedById: string | null },
    ): Promise<string> {
      const move = await tx.move.create({
        data: { ...m, step: STEP_NAMES[0], steps: { create: STEP_NAMES.map((name, index) => ({ index, name })) } },
        select: { id: true },
      })
      return move.id
    },
    async activeIds(): Promise<{ id: string; tenantId: string }[]> {
      return db.move.findMany({ where: { state: { in: ['running', 'compensating'] } }, select: { id: true, tenantId: true } })
    },
  }
}
export type MoveStore = ReturnType<typeof createMoveStore>
