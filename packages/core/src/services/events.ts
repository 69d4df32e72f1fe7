import { z } from 'zod'
import type { Actor } from '../auth/actor'
import { requireRole } from '../auth/actor'
import type { HotStore } from '../store/hot-store'

export const ZEvent = z.object({
  id: z.string(),
  kind: z.string(),
  type: z.string(),
  subject: z.string(),
  message: z.string(),
  actorId: z.string().nullable(),
  createdAt: z.date(),
})
export type TEvent = z.infer<typeof ZEvent>

export function createEventService({ hot }: { hot: HotStore }) {
  return {
    async list(actor: Actor, tenantId: string, opts: { limit: number; beforeId?: string }): Promise<TEvent[]> {
      requireRole(actor, tenantId, 'viewer')
      const rows = await hot.listEvents(tenantId, opts)
      return rows.map((r) => ({ ...r, id: r.id.toString() }))
    },
  }
}
